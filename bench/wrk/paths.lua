-- wrk script for the online benchmark (bench/online.py).
--
--   wrk -t1 -c16 -d10s --latency -s bench/wrk/paths.lua http://127.0.0.1:PORT -- PATHS_FILE
--
-- Each request is the next path of PATHS_FILE (one per line, cycled), as a GET. When
-- BENCH_TOKEN is set it goes in an "Authorization: Bearer" header; it is read from the
-- environment so it never appears on a command line. done() prints one JSON line with the
-- figures bench/online.py reads: requests, duration and latencies in microseconds, errors.

local paths = {}
local next_index = 1

function init(args)
  for line in io.lines(args[1]) do
    if line ~= "" then
      paths[#paths + 1] = line
    end
  end
  if #paths == 0 then
    error("no paths in " .. args[1])
  end
  -- Threads start at different places so they do not walk the same profiles in step.
  math.randomseed(os.time() + tonumber(tostring({}):match("0x(%x+)"), 16) % 100000)
  next_index = math.random(#paths)
  local token = os.getenv("BENCH_TOKEN")
  if token ~= nil and token ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. token
  end
end

function request()
  local path = paths[next_index]
  next_index = next_index % #paths + 1
  return wrk.format("GET", path)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
      .. '"max_us": %d, "connect_errors": %d, "read_errors": %d, "write_errors": %d, '
      .. '"status_errors": %d, "timeouts": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency.max, errors.connect, errors.read, errors.write,
    errors.status, errors.timeout
  ))
end
