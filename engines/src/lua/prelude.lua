-- Troupe's trusted Lua prelude. It runs once per Lua state, with the state's
-- real globals, before any script. Scripts never see those globals: each
-- process gets a fresh environment from `new_env`, whose library tables are
-- read-only proxies. Nothing below is reachable from a script except through
-- the functions placed in that environment.
local R = ...

local co_create, co_resume, co_yield = coroutine.create, coroutine.resume, coroutine.yield
local co_isyieldable = coroutine.isyieldable
local select, error, tostring, setmetatable, next = select, error, tostring, setmetatable, next
local type, pcall, xpcall, raw_load, collectgarbage = type, pcall, xpcall, load, collectgarbage
local traceback, concat = debug.traceback, table.concat
local raw_getmetatable, raw_rawset = debug.getmetatable, rawset

local SENT, OK = R.SENT, R.OK
local preempting, out = R.preempting, R.out
local is_error, runtime_error = R.is_error, R.runtime_error

-- `("x"):dump()` would reach string.dump through the string metatable.
string.dump = nil
getmetatable("").__metatable = "locked"

-- Every metatable `readonly` made (weak keys): `rawset` refuses the tables
-- that have one, so a read-only view stays read-only.
local READONLY = setmetatable({}, { __mode = "k" })

-- A metatable making an empty table a read-only view of `src` (minus `skip`).
local function readonly(name, src, skip)
  local copy = {}
  for k, v in next, src do
    if not (skip and skip[k]) then copy[k] = v end
  end
  local mt = {
    __index = copy,
    __newindex = function() error("attempt to modify read-only table '" .. name .. "'", 2) end,
    __metatable = "locked",
    __pairs = function()
      local k
      return function()
        local v
        k, v = next(copy, k)
        return k, v
      end
    end,
  }
  READONLY[mt] = name
  return mt
end

-- Commands and preemptions yielded inside a script's own coroutines travel
-- up to the scheduler, and the answer comes back down to the coroutine that
-- asked; the script's `coroutine.resume` never sees them.
local function relay(co, ok, ...)
  if ok then
    if ... == SENT then
      return relay(co, co_resume(co, co_yield(SENT)))
    elseif select("#", ...) == 0 and preempting() then
      if co_isyieldable() then co_yield() end
      return relay(co, co_resume(co))
    end
  end
  return ok, ...
end

local function resume(co, ...)
  return relay(co, co_resume(co, ...))
end

local function unwrap(ok, ...)
  if ok then return ... end
  error((...), 0)
end

local CO = {
  create = co_create,
  resume = resume,
  yield = co_yield,
  status = coroutine.status,
  running = coroutine.running,
  isyieldable = co_isyieldable,
  close = coroutine.close,
  wrap = function(f)
    local co = co_create(f)
    return function(...) return unwrap(relay(co, co_resume(co, ...))) end
  end,
}

-- Module functions return OK plus values, SENT after storing a command, or
-- an error object to raise. A command's answer comes back in the same form
-- (OK plus the script's return values, or an error object to raise).
local function finish(tag, ...)
  if tag == OK then return ... end
  if tag == SENT then return finish(co_yield(SENT)) end
  error(tag, 2)
end

local function wrap_fn(f)
  return function(...) return finish(f(...)) end
end

-- A memory error caught by the script's pcall is raised again: running out
-- of the memory limit ends the process.
local MEMERR = "not enough memory"
local function recheck(ok, ...)
  if not ok and ... == MEMERR then error(MEMERR, 0) end
  return ok, ...
end

local GC_ALLOWED = { collect = true, count = true, step = true }

local BASE = {
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
  rawequal = rawequal, rawget = rawget, rawlen = rawlen,
  rawset = function(t, k, v)
    local ro = READONLY[raw_getmetatable(t)]
    if ro then error("attempt to modify read-only table '" .. ro .. "'", 2) end
    return raw_rawset(t, k, v)
  end,
  select = select, setmetatable = setmetatable, getmetatable = getmetatable,
  tonumber = tonumber, tostring = tostring, type = type, _VERSION = _VERSION,
  require = wrap_fn(R.require),
  pcall = function(...) return recheck(pcall(...)) end,
  xpcall = function(...) return recheck(xpcall(...)) end,
  print = function(...)
    local n = select("#", ...)
    local parts = {}
    for i = 1, n do parts[i] = tostring((select(i, ...))) end
    out(concat(parts, "\t"))
  end,
  collectgarbage = function(opt, ...)
    opt = opt or "collect"
    if not GC_ALLOWED[opt] then
      error("collectgarbage: option '" .. tostring(opt) .. "' is not allowed", 2)
    end
    return collectgarbage(opt, ...)
  end,
}

local MT = {
  string = readonly("string", string),
  table = readonly("table", table),
  utf8 = readonly("utf8", utf8),
  coroutine = readonly("coroutine", CO),
  math = readonly("math", math),
  math_det = readonly("math", math, { random = true, randomseed = true }),
}

-- A fresh global environment for one process.
local function new_env(nondeterministic)
  local env = {}
  for k, v in next, BASE do env[k] = v end
  env.string = setmetatable({}, MT.string)
  env.table = setmetatable({}, MT.table)
  env.utf8 = setmetatable({}, MT.utf8)
  env.coroutine = setmetatable({}, MT.coroutine)
  env.math = setmetatable({}, nondeterministic and MT.math or MT.math_det)
  env.load = function(chunk, name, _, e)
    return raw_load(chunk, name, "t", e or env)
  end
  env._G = env
  return env
end

local function handler(e)
  if is_error(e) then return e end
  return runtime_error(tostring(e), traceback("", 2))
end

local function run_main(main, env, entry, ...)
  if entry == nil then return main(...) end
  -- With an entry, the chunk is loaded like a module (no arguments) and the
  -- entry function gets the spawn arguments.
  local r = main()
  local f
  if type(r) == "table" then f = r[entry] end
  if f == nil then f = env[entry] end
  if type(f) ~= "function" then
    error(R.invalid("entry function '" .. tostring(entry) .. "' not found"))
  end
  return f(...)
end

-- The body of every process thread: the script under a handler that turns
-- any error into a structured error object with a traceback.
local function body(main, env, entry, ...)
  return xpcall(run_main, handler, main, env, entry, ...)
end

return { new_env = new_env, body = body, wrap_fn = wrap_fn, readonly = readonly }
