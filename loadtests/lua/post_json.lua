-- POST a JSON body: STACKBENCH_BODY with "{id}" (random id) and "{grade}" (random 0..5);
-- the path may use "{id}" too. Requests are preformatted when ids × 6 is small enough.
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

local ids = {}
local prepared = nil
local template, body_template, method, headers

setup = common.setup
done = common.done
if common.counting() then
  response = common.response
end

local function build(id, grade)
  local values = { id = id, grade = grade }
  return wrk.format(method, common.fill(template, values), headers,
                    common.fill(body_template, values))
end

function init(args)
  common.seed()
  ids = common.load_ids()
  if #ids == 0 then
    ids = { "" }
  end
  template = common.env("STACKBENCH_PATH", wrk.path)
  body_template = common.env("STACKBENCH_BODY", '{"id": "{id}", "grade": {grade}}')
  method = common.env("STACKBENCH_METHOD", "POST")
  headers = common.headers()
  headers["Content-Type"] = headers["Content-Type"] or "application/json"
  if #ids * 6 <= 200000 then
    prepared = {}
    for _, id in ipairs(ids) do
      for grade = 0, 5 do
        table.insert(prepared, build(id, grade))
      end
    end
  end
end

function request()
  if prepared then
    return common.sending(prepared[math.random(#prepared)])
  end
  return common.sending(build(ids[math.random(#ids)], math.random(0, 5)))
end
