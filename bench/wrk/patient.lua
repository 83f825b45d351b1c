-- GET /v1/patients/{id} for a random seeded patient.
package.path = "bench/wrk/?.lua;" .. package.path
local c = require "common"

function request()
    return wrk.format("GET", "/v1/patients/" .. c.patient(math.random(1, 10000)), c.headers)
end
