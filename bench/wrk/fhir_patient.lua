-- GET /fhir/R4/Patient/{id} for a random seeded patient: the FHIR facade's
-- read of what patient.lua reads on /v1.
package.path = "bench/wrk/?.lua;" .. package.path
local c = require "common"

function request()
    return wrk.format("GET", "/fhir/R4/Patient/" .. c.patient(math.random(1, 10000)), c.headers)
end
