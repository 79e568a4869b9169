-- Shared by the stackbench wrk scripts: per-thread response counting and a JSON summary.
--
-- Environment (all optional):
--   STACKBENCH_COUNT_RESPONSES  "0" disables the response() hook (status class counting)
--   STACKBENCH_IDS_FILE         file of ids, one per line (or comma separated)
--   STACKBENCH_IDS              ids inline, comma separated
--   STACKBENCH_USERS_FILE       the load spread over users (post_json): one line a user, its token
--                               then its ids, space separated; each request is sent as a random
--                               user with "Authorization: Bearer <its token>" and one of its ids
--   STACKBENCH_PATH             path template, "{id}" replaced by a random id
--   STACKBENCH_METHOD           request method (default GET, or POST with a body)
--   STACKBENCH_BODY             body template: "{id}" → random id, "{grade}" → random 0..5
--   STACKBENCH_TOKEN            sent as "Authorization: Bearer <token>"
--   STACKBENCH_HEADERS          extra headers, "Name: value" joined by "\n"
--   STACKBENCH_CONNECTIONS      connections per thread (sizes the ring of recent send times)
local M = {}

local threads = {}
local counter = 0

function M.setup(thread)
  counter = counter + 1
  thread:set("stackbench_tid", counter)
  table.insert(threads, thread)
end

function M.env(name, default)
  local value = os.getenv(name)
  if value == nil or value == "" then
    return default
  end
  return value
end

function M.counting()
  return M.env("STACKBENCH_COUNT_RESPONSES", "1") ~= "0"
end

function M.seed()
  local tid = stackbench_tid or 0
  math.randomseed(os.time() * 1000 + tid * 7919 + math.floor(os.clock() * 1000000))
  -- the first values after seeding are poorly mixed in some Lua versions
  for _ = 1, 10 do math.random() end
end

function M.load_ids()
  local ids = {}
  local path = M.env("STACKBENCH_IDS_FILE", nil)
  local text = M.env("STACKBENCH_IDS", "")
  if path then
    local f = assert(io.open(path, "r"), "cannot open STACKBENCH_IDS_FILE " .. path)
    text = f:read("*a")
    f:close()
  end
  for id in string.gmatch(text, "[^,%s]+") do
    table.insert(ids, id)
  end
  return ids
end

-- the users of STACKBENCH_USERS_FILE: { {token = "...", ids = {...}}, ... } (empty without it)
function M.load_users()
  local users = {}
  local path = M.env("STACKBENCH_USERS_FILE", nil)
  if not path then
    return users
  end
  local f = assert(io.open(path, "r"), "cannot open STACKBENCH_USERS_FILE " .. path)
  local text = f:read("*a")
  f:close()
  for line in string.gmatch(text, "[^\n]+") do
    local user = nil
    for field in string.gmatch(line, "[^,%s]+") do
      if user == nil then
        user = { token = field, ids = {} }
      else
        table.insert(user.ids, field)
      end
    end
    if user ~= nil then
      assert(#user.ids > 0, "STACKBENCH_USERS_FILE: a user without ids")
      table.insert(users, user)
    end
  end
  return users
end

function M.headers()
  local headers = {}
  local token = M.env("STACKBENCH_TOKEN", nil)
  if token then
    headers["Authorization"] = "Bearer " .. token
  end
  local extra = M.env("STACKBENCH_HEADERS", "")
  for line in string.gmatch(extra, "[^\n]+") do
    local name, value = string.match(line, "^%s*([^:]+):%s*(.-)%s*$")
    if name then
      headers[name] = value
    end
  end
  return headers
end

-- fill a template: every "{key}" is replaced by values[key] (plain text, no patterns)
function M.fill(template, values)
  return (string.gsub(template, "{(%w+)}", function(key)
    local value = values[key]
    if value == nil then
      return "{" .. key .. "}"
    end
    return tostring(value)
  end))
end

-- Uncorrected latency. wrk 4 "corrects" its latency histogram for coordinated omission before
-- done() sees it (stats_correct: every response slower than twice the per-connection interval
-- runtime / (requests / connections) adds synthetic samples below it), so wrk's mean and
-- percentiles are not the times requests spent in the server, and Little's law (N = X·W) does
-- not hold for them when a server has a heavy tail. The sum of the answered requests' latencies
-- is Σ receive times − Σ their send times whatever the pairing, so two sums per thread give the
-- uncorrected mean. The requests still in flight when wrk stops (one per busy connection) were
-- sent but not answered: their send times are taken as the latest sends (a ring of them), which
-- errs only when a connection was starved across its last send (an overestimate then, at most
-- the request's age per such connection).
local ok_ffi, ffi = pcall(require, "ffi")
local clock = nil
if ok_ffi then
  ffi.cdef[[
    typedef struct { long tv_sec; long tv_nsec; } stackbench_timespec;
    int clock_gettime(int clk_id, stackbench_timespec *tp);
  ]]
  local ts = ffi.new("stackbench_timespec")
  clock = function()
    ffi.C.clock_gettime(1, ts)  -- CLOCK_MONOTONIC
    return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
  end
end
local ring_size = tonumber(M.env("STACKBENCH_CONNECTIONS", "1024")) or 1024
local base = clock and clock() or 0
local verify_skipped = false

-- per thread: status classes and send/receive sums (globals, read back with thread:get in done())
stackbench_2xx = 0
stackbench_non2xx = 0
stackbench_sent = 0
stackbench_got = 0
stackbench_sent_us = 0
stackbench_got_us = 0
stackbench_ring = {}

-- every script's request() returns through this: it stamps the send time
function M.sending(req)
  if clock then
    -- wrk calls thread 1's request() once before the run to count pipelined requests
    -- (script_verify_request): that request is never sent
    if stackbench_tid == 1 and not verify_skipped then
      verify_skipped = true
      return req
    end
    local t = clock() - base
    stackbench_sent = stackbench_sent + 1
    stackbench_sent_us = stackbench_sent_us + t
    stackbench_ring[stackbench_sent % ring_size + 1] = t
  end
  return req
end

function M.response(status, headers, body)
  if clock then
    stackbench_got = stackbench_got + 1
    stackbench_got_us = stackbench_got_us + (clock() - base)
  end
  if status >= 200 and status < 300 then
    stackbench_2xx = stackbench_2xx + 1
  else
    stackbench_non2xx = stackbench_non2xx + 1
  end
end

-- Σ latency and count of the answered requests over every thread (nil without a clock)
local function uncorrected()
  if not clock then
    return nil
  end
  local answered, sum, unanswered = 0, 0, 0
  for _, thread in ipairs(threads) do
    local sent, got = thread:get("stackbench_sent") or 0, thread:get("stackbench_got") or 0
    local ring = thread:get("stackbench_ring") or {}
    local pending = sent - got
    local pending_us = 0
    for k = 0, math.min(pending, ring_size) - 1 do
      pending_us = pending_us + (ring[(sent - k) % ring_size + 1] or 0)
    end
    answered = answered + got
    unanswered = unanswered + pending
    sum = sum + (thread:get("stackbench_got_us") or 0) - ((thread:get("stackbench_sent_us") or 0) - pending_us)
  end
  return answered, sum, unanswered
end

local function num(x)
  if x == nil or x ~= x or x == math.huge or x == -math.huge then
    return "null"
  end
  return string.format("%.17g", x)
end

local function uncorrected_json(counted)
  local answered, sum, unanswered = nil, nil, nil
  if counted then
    answered, sum, unanswered = uncorrected()
  end
  if not answered then
    return "null"
  end
  return '{"answered":' .. num(answered) .. ',"sum":' .. num(sum) .. ',"unanswered":' .. num(unanswered)
    .. ',"mean":' .. (answered > 0 and num(sum / answered) or "null") .. '}'
end

function M.done(summary, latency, requests)
  local ok, non_ok = 0, 0
  for _, thread in ipairs(threads) do
    ok = ok + (thread:get("stackbench_2xx") or 0)
    non_ok = non_ok + (thread:get("stackbench_non2xx") or 0)
  end
  local counted = M.counting()
  local e = summary.errors
  local parts = {
    '"requests":' .. num(summary.requests),
    '"duration_us":' .. num(summary.duration),
    '"bytes":' .. num(summary.bytes),
    '"threads":' .. num(#threads),
    '"errors":{"connect":' .. num(e.connect) .. ',"read":' .. num(e.read)
      .. ',"write":' .. num(e.write) .. ',"status":' .. num(e.status)
      .. ',"timeout":' .. num(e.timeout) .. '}',
    '"latency_us":{"min":' .. num(latency.min) .. ',"max":' .. num(latency.max)
      .. ',"mean":' .. num(latency.mean) .. ',"stdev":' .. num(latency.stdev)
      .. ',"p50":' .. num(latency:percentile(50)) .. ',"p90":' .. num(latency:percentile(90))
      .. ',"p99":' .. num(latency:percentile(99)) .. ',"p99_9":' .. num(latency:percentile(99.9))
      .. '}',
    '"counted_responses":' .. (counted and "true" or "false"),
    '"uncorrected_latency_us":' .. uncorrected_json(counted),
    '"status_2xx":' .. (counted and num(ok) or "null"),
    '"non_2xx":' .. (counted and num(non_ok) or "null"),
  }
  io.write("STACKBENCH_RESULT {" .. table.concat(parts, ",") .. "}\n")
end

return M
