-- GET /v1/appointments?patient_id= for a random patient with history.
package.path = "bench/wrk/?.lua;" .. package.path
local c = require "common"

function request()
    return wrk.format("GET", "/v1/appointments?patient_id=" .. c.patient(math.random(1, 9000)), c.headers)
end
