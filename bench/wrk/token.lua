-- POST /oauth/token, each request with an assertion of its own: bench.py
-- signs them (ES384, a new `jti` each) into BENCH_ASSERTIONS, one a line;
-- each wrk thread takes every BENCH_THREADS-th line, so none is sent twice
-- (a replay would be a 400, counted as non-2xx).
package.path = "bench/wrk/?.lua;" .. package.path
local c = require "common"

local mine = {}
local i = 0
local form = "grant_type=client_credentials"
    .. "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
    .. "&scope=system%2FPatient.rs&client_assertion="
local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }

function init()
    math.randomseed(7919 * thread_id)
    local threads = tonumber(os.getenv("BENCH_THREADS"))
    local n = 0
    for line in io.lines(os.getenv("BENCH_ASSERTIONS")) do
        if n % threads == thread_id - 1 then
            mine[#mine + 1] = line
        end
        n = n + 1
    end
end

function request()
    i = i % #mine + 1
    return wrk.format("POST", "/oauth/token", headers, form .. mine[i])
end
