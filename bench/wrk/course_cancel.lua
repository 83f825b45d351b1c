-- POST /v1/courses: a 5-day chronic pain course from a random Monday, then
-- cancel it.
package.path = "bench/wrk/?.lua;" .. package.path
local c = require "common"
local next_patient

c.book_then_cancel(function()
    next_patient = next_patient or c.own_patients(true)
    local body = string.format(
        '{"patient_id":"%s","protocol":"pain-5-day","session":"%s","earliest_start":"%s"}',
        next_patient(), c.session(), c.pick(c.mondays))
    return wrk.format("POST", "/v1/courses", c.headers, body)
end, function(id) return "/v1/courses/" .. id .. "/cancel" end)
