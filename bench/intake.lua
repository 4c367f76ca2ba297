-- wrk script for bench/intake.py: every request is a different gated pipeline.
--
-- BENCH_TEMPLATE is a real Pipeline Hook body (bot.simulators.gitlab_events.pipeline_event)
-- with the ids replaced by markers: {P} pipeline id, {T} test job id, {J} gate job id,
-- {D} deploy job id. Each request fills them with fresh ids (thread id and a counter, so
-- threads never collide) and sends a fresh Idempotency-Key: the bot has to take the
-- delivery key, claim the gate key and enqueue a job for every request.
-- BENCH_TOKEN is the X-Gitlab-Token, BENCH_BASE the first id (distinct per run).
-- done() prints one JSON line prefixed with "BENCH_JSON " for the Python side.

local next_tid = 0

function setup(thread)
   next_tid = next_tid + 1
   thread:set("tid", next_tid)
end

local parts, keys = {}, {}
local counter = 0
local token, base, headers

function init(args)
   token = os.getenv("BENCH_TOKEN")
   base = tonumber(os.getenv("BENCH_BASE"))
   local file = assert(io.open(os.getenv("BENCH_TEMPLATE"), "rb"))
   local template = file:read("*a")
   file:close()
   local pos = 1
   while true do
      local s, e, key = string.find(template, "{([PTJD])}", pos)
      if not s then break end
      table.insert(parts, string.sub(template, pos, s - 1))
      table.insert(keys, key)
      pos = e + 1
   end
   table.insert(parts, string.sub(template, pos))
   headers = {
      ["Content-Type"] = "application/json",
      ["X-Gitlab-Event"] = "Pipeline Hook",
      ["X-Gitlab-Token"] = token,
   }
end

function request()
   counter = counter + 1
   local n = tid * 10000000 + counter
   local pipeline = base + n
   local job = (base + n) * 10
   local values = {
      P = string.format("%d", pipeline),
      T = string.format("%d", job - 1),
      J = string.format("%d", job),
      D = string.format("%d", job + 1),
   }
   local out = {}
   for i = 1, #keys do
      out[#out + 1] = parts[i]
      out[#out + 1] = values[keys[i]]
   end
   out[#out + 1] = parts[#parts]
   headers["Idempotency-Key"] = string.format("wrk-%d-%d", base, n)
   return wrk.format("POST", "/webhooks/gitlab", headers, table.concat(out))
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
      '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
      '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d, "mean": %.1f}}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean))
end
