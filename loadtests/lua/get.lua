-- GET the URL's path (or STACKBENCH_PATH); wrk builds the request once.
local dir = string.match(debug.getinfo(1, "S").source, "^@(.*/)") or "./"
local common = dofile(dir .. "common.lua")

wrk.method = common.env("STACKBENCH_METHOD", "GET")
wrk.path = common.env("STACKBENCH_PATH", wrk.path)
for name, value in pairs(common.headers()) do
  wrk.headers[name] = value
end

setup = common.setup
done = common.done
if common.counting() then
  response = common.response
end
