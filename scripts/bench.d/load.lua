-- wrk script for scripts/bench.
--   wrk ... -s load.lua URL -- MODE TOKENS_TSV VIDEOS
-- MODE "summaries": POST /api/v1/orgs/{slug}/summaries with a random token
--   (Bearer) and a random bench video bv000000001..bv<VIDEOS>.
-- MODE "dashboard": GET /o/{slug} with a random token as the Clerk
--   `__session` cookie, as a browser sends it.
-- Non-2xx answers are counted exactly in response() (per thread) and summed
-- in done(), which prints one machine-readable "BENCH …" line.

local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

local tokens = {}
local mode, videos

function init(args)
  mode = args[1]
  videos = tonumber(args[3])
  for line in io.lines(args[2]) do
    local slug, token = line:match("^%d+\t(%S+)\t%S+\t%S+\t%S+\t(%S+)$")
    if slug then
      tokens[#tokens + 1] = { slug, token }
    end
  end
  assert(#tokens > 0, "no tokens in " .. args[2])
  math.randomseed(os.time() * 7919 + id)
  non2xx = 0
  first_bad = 0
end

function request()
  local t = tokens[math.random(#tokens)]
  if mode == "summaries" then
    local body = string.format('{"url":"https://www.youtube.com/watch?v=bv%09d"}', math.random(videos))
    return wrk.format("POST", "/api/v1/orgs/" .. t[1] .. "/summaries", {
      ["Authorization"] = "Bearer " .. t[2],
      ["Content-Type"] = "application/json",
    }, body)
  else
    return wrk.format("GET", "/o/" .. t[1], { ["Cookie"] = "__session=" .. t[2] }, nil)
  end
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if first_bad == 0 then
      first_bad = status
    end
  end
end

function done(summary, latency, requests)
  local bad, first = 0, 0
  for _, thread in ipairs(threads) do
    bad = bad + (thread:get("non2xx") or 0)
    local f = thread:get("first_bad") or 0
    if first == 0 then first = f end
  end
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d non2xx=%d first_non2xx=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%d socket_errors=%d timeouts=%d\n",
    summary.requests, summary.duration, bad, first,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    math.floor(latency.mean), e.connect + e.read + e.write, e.timeout))
end
