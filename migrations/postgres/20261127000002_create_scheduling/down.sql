DROP TABLE appointments;
DROP TABLE closures;
DROP TABLE rooms;
