-- wrk script for scripts/bench's GET phase.
--   wrk ... -s get.lua URL -- KEYS_TSV
-- Each line of KEYS_TSV: org slug, its API key's secret, the videos in its
-- history (comma-separated). Each request is GET
-- /api/v1/orgs/{slug}/summaries/{video_id} for a random org, with its key as
-- `Authorization: Bearer`, and a random video of that org's history, so every
-- answer should be a ready summary: 200. Anything else is counted exactly in
-- response() (per thread) and summed in done(), which prints one
-- machine-readable "BENCH …" line (the fields of load.lua's, where non2xx
-- counts every status but 200, plus errors = non-200 + socket errors +
-- timeouts).

local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

local orgs = {}

function init(args)
  for line in io.lines(args[1]) do
    local slug, secret, list = line:match("^(%S+)\t(tldw_%S+)\t(%S+)$")
    if slug then
      local videos = {}
      for video in list:gmatch("[^,]+") do
        videos[#videos + 1] = "/api/v1/orgs/" .. slug .. "/summaries/" .. video
      end
      orgs[#orgs + 1] = { { ["Authorization"] = "Bearer " .. secret }, videos }
    end
  end
  assert(#orgs > 0, "no keys in " .. args[1])
  math.randomseed(os.time() * 7919 + id)
  non2xx = 0
  first_bad = 0
end

function request()
  local org = orgs[math.random(#orgs)]
  local videos = org[2]
  return wrk.format("GET", videos[math.random(#videos)], org[1], nil)
end

function response(status, headers, body)
  if status ~= 200 then
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
  local socket = e.connect + e.read + e.write
  io.write(string.format(
    "BENCH requests=%d duration_us=%d non2xx=%d first_non2xx=%d errors=%d p50_us=%d p90_us=%d p99_us=%d max_us=%d mean_us=%d socket_errors=%d timeouts=%d\n",
    summary.requests, summary.duration, bad, first, bad + socket + e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    math.floor(latency.mean), socket, e.timeout))
end
