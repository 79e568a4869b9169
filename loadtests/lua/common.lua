-- Shared by the stackbench wrk scripts: per-thread response counting and a JSON summary.
--
-- Environment (all optional):
--   STACKBENCH_COUNT_RESPONSES  "0" disables the response() hook (status class counting)
--   STACKBENCH_IDS_FILE         file of ids, one per line (or comma separated)
--   STACKBENCH_IDS              ids inline, comma separated
--   STACKBENCH_PATH             path template, "{id}" replaced by a random id
--   STACKBENCH_METHOD           request method (default GET, or POST with a body)
--   STACKBENCH_BODY             body template: "{id}" → random id, "{grade}" → random 0..5
--   STACKBENCH_TOKEN            sent as "Authorization: Bearer <token>"
--   STACKBENCH_HEADERS          extra headers, "Name: value" joined by "\n"
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

-- per thread: status classes (globals, read back with thread:get in done())
stackbench_2xx = 0
stackbench_non2xx = 0

function M.response(status, headers, body)
  if status >= 200 and status < 300 then
    stackbench_2xx = stackbench_2xx + 1
  else
    stackbench_non2xx = stackbench_non2xx + 1
  end
end

local function num(x)
  if x == nil or x ~= x or x == math.huge or x == -math.huge then
    return "null"
  end
  return string.format("%.17g", x)
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
    '"status_2xx":' .. (counted and num(ok) or "null"),
    '"non_2xx":' .. (counted and num(non_ok) or "null"),
  }
  io.write("STACKBENCH_RESULT {" .. table.concat(parts, ",") .. "}\n")
end

return M
