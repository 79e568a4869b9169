-- POST a JSON body: STACKBENCH_BODY with "{id}" (random id) and "{grade}" (random 0..5);
-- the path may use "{id}" too. Requests are preformatted when ids × 6 is small enough.
-- With STACKBENCH_USERS_FILE (common.lua) each request is sent as a random user of the file,
-- with its own token and one of its own ids (preformatted too when Σ ids × 6 is small enough).
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

local PREPARED_MAX = 200000

local ids = {}
local users = {}
local prepared = nil
local template, body_template, method, headers

setup = common.setup
done = common.done
if common.counting() then
  response = common.response
end

local function build(id, grade, with_headers)
  local values = { id = id, grade = grade }
  return wrk.format(method, common.fill(template, values), with_headers or headers,
                    common.fill(body_template, values))
end

function init(args)
  common.seed()
  template = common.env("STACKBENCH_PATH", wrk.path)
  body_template = common.env("STACKBENCH_BODY", '{"id": "{id}", "grade": {grade}}')
  method = common.env("STACKBENCH_METHOD", "POST")
  headers = common.headers()
  headers["Content-Type"] = headers["Content-Type"] or "application/json"
  users = common.load_users()
  if #users > 0 then
    local total = 0
    for _, user in ipairs(users) do
      user.headers = {}
      for name, value in pairs(headers) do
        user.headers[name] = value
      end
      user.headers["Authorization"] = "Bearer " .. user.token
      total = total + #user.ids
    end
    if total * 6 <= PREPARED_MAX then
      -- one list per user: request() draws the user uniformly, then one of its requests
      for _, user in ipairs(users) do
        user.prepared = {}
        for _, id in ipairs(user.ids) do
          for grade = 0, 5 do
            table.insert(user.prepared, build(id, grade, user.headers))
          end
        end
      end
      prepared = true
    end
    return
  end
  ids = common.load_ids()
  if #ids == 0 then
    ids = { "" }
  end
  if #ids * 6 <= PREPARED_MAX then
    prepared = {}
    for _, id in ipairs(ids) do
      for grade = 0, 5 do
        table.insert(prepared, build(id, grade))
      end
    end
  end
end

function request()
  if #users > 0 then
    local user = users[math.random(#users)]
    if prepared then
      return common.sending(user.prepared[math.random(#user.prepared)])
    end
    return common.sending(build(user.ids[math.random(#user.ids)], math.random(0, 5), user.headers))
  end
  if prepared then
    return common.sending(prepared[math.random(#prepared)])
  end
  return common.sending(build(ids[math.random(#ids)], math.random(0, 5)))
end
