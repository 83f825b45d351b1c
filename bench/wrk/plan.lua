-- POST /v1/courses/plan: a 10-infusion course for a chronic pain patient
-- with history, from a random clinic day.
package.path = "bench/wrk/?.lua;" .. package.path
local c = require "common"

function request()
    local n = 10 * math.random(0, 899) + math.random(1, 6)
    local body = string.format(
        '{"patient_id":"%s","protocol":"pain-8-10-day","session":"%s","earliest_start":"%s","infusions":10}',
        c.patient(n), c.session(), c.pick(c.days))
    return wrk.format("POST", "/v1/courses/plan", c.headers, body)
end
