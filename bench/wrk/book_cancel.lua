-- POST /v1/appointments on a random clinic day, then cancel it.
package.path = "bench/wrk/?.lua;" .. package.path
local c = require "common"
local next_patient

c.book_then_cancel(function()
    next_patient = next_patient or c.own_patients(false)
    local body = string.format('{"patient_id":"%s","date":"%s","session":"%s"}',
        next_patient(), c.pick(c.days), c.session())
    return wrk.format("POST", "/v1/appointments", c.headers, body)
end, function(id) return "/v1/appointments/" .. id .. "/cancel" end)
