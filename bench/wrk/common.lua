-- Shared by the wrk scripts of `make bench`: the token, the seeded ids and
-- the clinic days, all from the environment bench.py sets.
local M = {}

M.headers = {
    ["Authorization"] = "Bearer " .. os.getenv("BENCH_TOKEN"),
    ["Content-Type"] = "application/json",
}

local function split(s)
    local out = {}
    for item in string.gmatch(s or "", "[^,]+") do
        out[#out + 1] = item
    end
    return out
end

-- Bookable clinic days and Mondays of the horizon.
M.days = split(os.getenv("BENCH_DAYS"))
M.mondays = split(os.getenv("BENCH_MONDAYS"))

-- Seeded patient n (bench/seed.py: patient_id).
function M.patient(n)
    return string.format("00000000-0000-4000-8000-%012d", n)
end

function M.pick(list)
    return list[math.random(#list)]
end

function M.session()
    if math.random(2) == 1 then return "morning" end
    return "afternoon"
end

-- Patients 9001..10000 have no seeded appointments: each wrk thread books
-- for its own half of them, cycling, so no two bookings in flight share a
-- patient. `pain_only` keeps the chronic pain ones (n % 10 < 7).
function M.own_patients(pain_only)
    local mine = {}
    for n = 9001, 10000 do
        local half = (n <= 9500) and 1 or 2
        if half == thread_id and (not pain_only or n % 10 < 7) then
            mine[#mine + 1] = n
        end
    end
    local i = 0
    return function()
        i = i % #mine + 1
        return M.patient(mine[i])
    end
end

-- A booking answered 201 queues its id; the next request cancels the oldest
-- queued, so the clinic's free capacity stays as seeded while the run goes
-- on. (Newest first let an early id sink under the later ones for the whole
-- run: its patient's course stayed active, and every later course for that
-- patient was a cheap 409 counted as a request.) What is still queued when
-- wrk stops, bench.py cancels (`tidy`). With
-- BENCH_KEYS=1 every write carries an Idempotency-Key of its own, as a
-- careful client's do: everything on (the audit record and the change event
-- are always written).
local keyed = os.getenv("BENCH_KEYS") == "1"
function M.book_then_cancel(book, cancel_path)
    local pending = {}
    local sent = 0
    request = function()
        sent = sent + 1
        if keyed then
            M.headers["Idempotency-Key"] = string.format("bench-%d-%d-%d", run_id, thread_id, sent)
        end
        local id = table.remove(pending, 1)
        if id then
            return wrk.format("POST", cancel_path(id), M.headers, '{"reason":"benchmark"}')
        end
        return book()
    end
    response = function(status, _, body)
        if status == 201 then
            local id = body:match('"id":"([^"]+)"')
            if id then pending[#pending + 1] = id end
        end
    end
end

local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("thread_id", threads)
end

function init()
    math.randomseed(7919 * thread_id)
    -- Keys unique across the runs of one database.
    run_id = os.time() * 100 + math.random(99)
end

return M
