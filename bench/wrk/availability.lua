-- GET /v1/availability over 4 weeks from a random clinic day.
package.path = "bench/wrk/?.lua;" .. package.path
local c = require "common"
local windows = {}
for w in string.gmatch(os.getenv("BENCH_WINDOWS"), "[^,]+") do
    windows[#windows + 1] = w
end

function request()
    return wrk.format("GET", "/v1/availability?" .. c.pick(windows), c.headers)
end
