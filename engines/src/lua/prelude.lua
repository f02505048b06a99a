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
local traceback, concat, unpack = debug.traceback, table.concat, table.unpack

local SENT, OK, PREEMPT, IMPORT = R.SENT, R.OK, R.PREEMPT, R.IMPORT
local preempting, terminating, out, arm = R.preempting, R.terminating, R.out, R.arm
local is_error, runtime_error, denied = R.is_error, R.runtime_error, R.denied
local getmetatable_raw, rawset_raw, rawget = debug.getmetatable, rawset, rawget
local setmetatable_raw = debug.setmetatable

-- `("x"):dump()` would reach string.dump through the string metatable.
string.dump = nil
getmetatable("").__metatable = "locked"

-- `string.find`, `match`, `gmatch` and `gsub` on a matcher whose work is
-- bounded and charged to the process (engines/src/lua/patterns.rs): the C
-- ones backtrack without limit, and no hook or kill can stop them. A
-- search whose worst case fits the budget anyway (`c_bounded`: a short
-- subject, few quantifiers) still runs on Lua's C functions, which are
-- faster. As Lua functions, a `gsub` callback is preemptible like any
-- other code.
do
  local pfind, pgsub, pfind_plain, c_bounded = R.pfind, R.pgsub, R.pfind_plain, R.c_bounded
  local sub, c_find, tonumber, tointeger = string.sub, string.find, tonumber, math.tointeger
  local c_match, c_gmatch, c_gsub = string.match, string.gmatch, string.gsub

  local function str_arg(v, i, name)
    local t = type(v)
    if t == "string" then return v end
    if t == "number" then return tostring(v) end
    error("bad argument #" .. i .. " to '" .. name .. "' (string expected, got " .. t .. ")", 3)
  end

  local function int_arg(v, i, name, default)
    if v == nil then return default end
    local n = tointeger(v)
    if n == nil and type(v) == "string" then n = tointeger(tonumber(v)) end
    if n == nil then
      error("bad argument #" .. i .. " to '" .. name .. "' (number has no integer representation)", 3)
    end
    return n
  end

  -- A 1-based start position from a possibly negative `init`.
  local function start_at(init, len)
    if init > 0 then return init end
    if init == 0 or init < -len then return 1 end
    return len + init + 1
  end

  -- One character class scan, linear: whether `p` needs the matcher.
  local function has_specials(p) return c_find(p, "[%^%$%*%+%?%.%(%[%%%-]") ~= nil end

  local function found(st, e, ...)
    if st == false then error(e, 3) end
    if st == nil then return nil end
    return st, e, ...
  end

  local function captures(st, e, ...)
    if st == false then error(e, 3) end
    if st == nil then return nil end
    return ...
  end

  function string.find(s, p, init, plain)
    s, p = str_arg(s, 1, "find"), str_arg(p, 2, "find")
    local len = #s
    init = start_at(int_arg(init, 3, "find", 1), len)
    if init > len + 1 then return nil end
    if plain or not has_specials(p) then
      local i = pfind_plain(s, p, init)
      if i then return i, i + #p - 1 end
      return nil
    end
    if c_bounded(len, p) then return c_find(s, p, init) end
    return found(pfind(s, p, init, true, false))
  end

  function string.match(s, p, init)
    s, p = str_arg(s, 1, "match"), str_arg(p, 2, "match")
    local len = #s
    init = start_at(int_arg(init, 3, "match", 1), len)
    if init > len + 1 then return nil end
    if c_bounded(len, p) then return c_match(s, p, init) end
    return captures(pfind(s, p, init, true, true))
  end

  function string.gmatch(s, p, init)
    s, p = str_arg(s, 1, "gmatch"), str_arg(p, 2, "gmatch")
    local len = #s
    if c_bounded(len, p) then return c_gmatch(s, p, init) end
    local pos = start_at(int_arg(init, 3, "gmatch", 1), len)
    if pos > len + 1 then pos = len + 2 end
    local last, iter
    local function got(st, e, ...)
      if st == false then error(e, 3) end
      if st == nil then pos = len + 2 return nil end
      -- An empty match right where the last one ended: try one further.
      if e == last then pos = st + 1 return iter() end
      pos, last = e + 1, e
      return ...
    end
    iter = function()
      if pos > len + 1 then return nil end
      return got(pfind(s, p, pos, false, true))
    end
    return iter
  end

  -- The replacement of a table or function `repl` (a string one is
  -- `pgsub`'s, in Rust).
  local function replacement(s, st, e, r, repl, kind)
    local v
    if kind == "table" then v = repl[r[3]] else v = repl(unpack(r, 3, #r)) end
    if v == nil or v == false then return sub(s, st, e) end
    local t = type(v)
    if t == "string" or t == "number" then return tostring(v) end
    error("invalid replacement value (a " .. t .. ")", 3)
  end

  function string.gsub(s, p, repl, max_n)
    s, p = str_arg(s, 1, "gsub"), str_arg(p, 2, "gsub")
    local kind = type(repl)
    if kind == "number" then repl, kind = tostring(repl), "string" end
    if kind ~= "string" and kind ~= "table" and kind ~= "function" then
      error("bad argument #3 to 'gsub' (string/function/table expected, got " .. kind .. ")", 2)
    end
    local len = #s
    max_n = int_arg(max_n, 4, "gsub", len + 1)
    if kind == "string" then
      if c_bounded(len, p) then return c_gsub(s, p, repl, max_n) end
      local out, n = pgsub(s, p, repl, max_n < 0 and 0 or max_n)
      if out == false then error(n, 2) end
      return out, n
    end
    local anchored = sub(p, 1, 1) == "^"
    local out, k, pos, last, n = {}, 0, 1, nil, 0
    while n < max_n do
      local r = { pfind(s, p, pos, true, true) }
      local st, e = r[1], r[2]
      if st == false then error(e, 2) end
      if st == nil then break end
      if e == last then
        -- An empty match right where the last one ended: keep one char.
        if pos > len then break end
        k = k + 1
        out[k] = sub(s, pos, pos)
        pos = pos + 1
      else
        if st > pos then
          k = k + 1
          out[k] = sub(s, pos, st - 1)
        end
        n = n + 1
        k = k + 1
        out[k] = replacement(s, st, e, r, repl, kind)
        pos, last = e + 1, e
      end
      if anchored then break end
    end
    k = k + 1
    out[k] = sub(s, pos)
    return concat(out), n
  end
end

-- Every read-only metatable, so `rawset` can refuse the tables using one.
local READONLY = setmetatable({}, { __mode = "k" })

local function refuse(name)
  error(denied("read-only table '" .. name .. "' cannot be modified"), 3)
end

-- A metatable making an empty table a read-only view of `src` (minus `skip`).
-- `src` itself stays unreachable to scripts (the metatable is locked), so it
-- is shared, not copied, unless some keys are skipped.
local function readonly(name, src, skip)
  local copy = src
  if skip then
    copy = {}
    for k, v in next, src do
      if not skip[k] then copy[k] = v end
    end
  end
  local mt = {
    __index = copy,
    __newindex = function() refuse(name) end,
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
  -- A limit error caught by the script's own coroutine still ends the process.
  if not ok and terminating() then error((...), 0) end
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

-- Coroutines get the counting hook when the process itself is preempted by
-- the watchdog (which only watches the process's own thread).
local function create(f)
  return arm(co_create(f))
end

local CO = {
  create = create,
  resume = resume,
  yield = co_yield,
  status = coroutine.status,
  running = coroutine.running,
  isyieldable = co_isyieldable,
  close = coroutine.close,
  wrap = function(f)
    local co = create(f)
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

-- `require`: a built-in or host module comes back ready (OK, table); an
-- eval import comes back as its chunk (IMPORT, fn), run here so it can yield.
local function require(name)
  local tag, v = R.require(name)
  if tag == IMPORT then
    local r = v()
    if r == nil then r = true end
    R.imported(name, r)
    return r
  end
  return finish(tag, v)
end

local function wrap_fn(f)
  return function(...) return finish(f(...)) end
end

-- A memory error or an exceeded limit caught by the script's pcall is
-- raised again: running out of a limit ends the process.
local MEMERR = "not enough memory"
local function recheck(ok, ...)
  if not ok and (... == MEMERR or terminating()) then error((...), 0) end
  return ok, ...
end

-- `coroutine.close` reports a failing `__close` as `false, err`, and
-- `load` a failing reader as `nil, err`: neither may swallow running out
-- of memory or an exceeded limit either.
CO.close = function(co) return recheck(coroutine.close(co)) end

local GC_ALLOWED = { collect = true, count = true, step = true }

-- Whether the state runs a journaled process, and its replay-safe
-- `tostring` (see `journaled_mode` below).
local DET = { on = false, ids = nil, count = 0, tostring = nil }

local BASE = {
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
  rawequal = rawequal, rawget = rawget, rawlen = rawlen,
  rawset = function(t, k, v)
    local name = READONLY[getmetatable_raw(t)]
    if name then refuse(name) end
    return rawset_raw(t, k, v)
  end,
  -- Finalizers would run whenever the collector gets to them, possibly
  -- while another process owns the state: the sandbox has none.
  setmetatable = function(t, mt)
    if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
      error(denied("__gc metamethods are not available in the sandbox"), 2)
    end
    return setmetatable(t, mt)
  end,
  select = select, getmetatable = getmetatable,
  tonumber = tonumber, tostring = tostring, type = type, _VERSION = _VERSION,
  require = require,
  pcall = function(...) return recheck(pcall(...)) end,
  xpcall = function(...) return recheck(xpcall(...)) end,
  print = function(...)
    local n = select("#", ...)
    local parts = {}
    local text = DET.on and DET.tostring or tostring
    for i = 1, n do parts[i] = text((select(i, ...))) end
    out(concat(parts, "\t"))
  end,
  collectgarbage = function(opt, ...)
    opt = opt or "collect"
    if DET.on and opt == "count" then
      error(R.nondeterminism("collectgarbage('count') in a workflow: memory use differs between a run and its replay"), 2)
    end
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

-- `eval_runner`: runs Lua in a fresh state of its own. The nested run's
-- commands and preemptions travel up through this process (SENT / PREEMPT);
-- a command's answer waits in the run for `eval_step` to pass down.
local eval_step = R.eval_step
local function drive(tag, run, ...)
  if tag == SENT then
    co_yield(SENT)
    return drive(eval_step(run))
  end
  if tag == PREEMPT then
    if co_isyieldable() then co_yield() end
    return drive(eval_step(run))
  end
  return finish(tag, run, ...)
end

local EVAL = {
  run = function(opts) return drive(R.eval_run(opts)) end,
  compile = function(source, method, opts) return finish(R.eval_compile(source, method, opts)) end,
}
local PROGRAM = {
  run = function(self, args) return drive(R.eval_program_run(self, args)) end,
}

-- `workflow.side_effect(fn)` and `workflow.retry(opts, fn)` take script
-- functions, so they are written here around the module's command steps
-- (see modules/src/builtin/workflow.rs): the journal answers
-- `side_effect("begin")` with the journaled value on replay, so `fn` runs
-- only once; `retry`'s backoff is a durable, journaled sleep.
local function raise_same(err) error(err, 0) end

local function workflow_module(W)
  local step, backoff = W.side_effect, W.retry
  W.side_effect = function(fn)
    if type(fn) ~= "function" then
      error(R.invalid("workflow.side_effect: argument #1 expected function, got " .. type(fn)), 2)
    end
    local r, err = step("begin")
    if err ~= nil then raise_same(err) end
    if r.done then return r.value end
    local ok, v = BASE.pcall(fn)
    if ok then
      local value, e = step("end", v)
      if e ~= nil then raise_same(e) end
      return value
    end
    if not is_error(v) then v = runtime_error(tostring(v), "") end
    local _, e = step("fail", v)
    raise_same(e or v)
  end
  W.retry = function(opts, fn)
    if type(opts) ~= "table" or type(fn) ~= "function" then
      error(R.invalid("workflow.retry: expected (options table, function)"), 2)
    end
    local attempts = opts.attempts or 3
    local delay = opts.backoff_ms or 100
    local multiplier = opts.multiplier or 2
    local max_delay = opts.max_backoff_ms or 60000
    if type(attempts) ~= "number" or attempts < 1 or type(delay) ~= "number" or delay < 0
      or type(multiplier) ~= "number" or multiplier < 1 or type(max_delay) ~= "number" then
      error(R.invalid("workflow.retry: attempts >= 1, backoff_ms >= 0, multiplier >= 1 and max_backoff_ms must be numbers"), 2)
    end
    local stop = {}
    for _, kind in ipairs(opts.non_retryable or {}) do stop[kind] = true end
    local attempt = 1
    while true do
      local r = table.pack(BASE.pcall(fn, attempt))
      local err
      if r[1] then
        if r[2] ~= nil or r[3] == nil then return table.unpack(r, 2, r.n) end
        err = r[3]
      else
        err = r[2]
      end
      local kind = is_error(err) and err:kind() or nil
      if attempt >= attempts or (kind ~= nil and stop[kind]) then
        if r[1] then return table.unpack(r, 2, r.n) end
        raise_same(err)
      end
      backoff(math.min(delay, max_delay))
      delay = delay * multiplier
      attempt = attempt + 1
    end
  end
end

-- The library views are shared by the processes of a state: they are empty,
-- their metatables locked and `rawset` refuses them, so no process can store
-- anything in them for the next one.
local VIEWS = {
  string = setmetatable({}, MT.string),
  table = setmetatable({}, MT.table),
  utf8 = setmetatable({}, MT.utf8),
  coroutine = setmetatable({}, MT.coroutine),
  math = setmetatable({}, MT.math),
  math_det = setmetatable({}, MT.math_det),
}

-- A new environment holding BASE and the views: one table constructor made
-- from BASE's keys, so the table is sized once instead of grown key by key.
local fields = {}
for k in next, BASE do fields[#fields + 1] = k .. " = B." .. k end
local fresh_env = raw_load("local B, V = ... return function(math) return { "
  .. concat(fields, ", ") .. ", string = V.string, table = V.table, utf8 = V.utf8,"
  .. " coroutine = V.coroutine, math = math, load = false, _G = false } end",
  "=troupe.env", "t")(BASE, VIEWS)

-- Gives `env` its own `load` (defaulting to `env`) and `_G`.
local function own(env)
  env.load = function(chunk, name, _, e)
    return recheck(raw_load(chunk, name, "t", e or env))
  end
  env._G = env
  return env
end

-- Journaled processes (workflows) are re-run on replay in another state, so
-- what plain Lua computes must not depend on the state: not on the string
-- hash seed (the order of `pairs` and `next`), nor on addresses (the text
-- of `tostring` of a table, `%p`). Their environments iterate tables in
-- sorted key order (booleans, then numbers, then strings) and name tables,
-- functions and coroutines by the order the script first printed them.
-- Keys whose order could only come from addresses are a NONDETERMINISM
-- error. A journaled process owns its state (it is never lightweight), so
-- the switch is per state: `journaled_mode` sets it for each new process.
local STRING_MT = getmetatable_raw("")
local sort, c_format, c_gsub, c_find = table.sort, string.format, string.gsub, string.find
local nondeterminism = R.nondeterminism

local RANK = { boolean = 1, number = 2, string = 3 }

local function key_less(a, b)
  local ra, rb = RANK[type(a)], RANK[type(b)]
  if ra ~= rb then return ra < rb end
  if ra == 1 then return (not a) and b end
  return a < b
end

-- The keys of `t`, sorted.
local function sorted_keys(t)
  local keys, n = {}, 0
  for k in next, t do
    if RANK[type(k)] == nil then
      error(nondeterminism("iterating a table with " .. type(k) .. " keys in a workflow:"
        .. " their order comes from memory addresses and changes on replay"
        .. " (keep such values in an array, or key them by a string id)"), 3)
    end
    n = n + 1
    keys[n] = k
  end
  sort(keys, key_less)
  return keys, n
end

-- The order `next` walks each table in, made when a walk starts.
local WALKS = setmetatable({}, { __mode = "k" })

local function det_next(t, k)
  if type(t) ~= "table" then
    error("bad argument #1 to 'next' (table expected, got " .. type(t) .. ")", 2)
  end
  local walk = WALKS[t]
  local i
  if k == nil then
    if next(t) == nil then return nil end
    local keys, n = sorted_keys(t)
    walk = { keys = keys, n = n, at = {} }
    for j = 1, n do walk.at[keys[j]] = j end
    WALKS[t] = walk
    i = 0
  else
    i = walk and walk.at[k]
    if i == nil then error("invalid key to 'next'", 2) end
  end
  local keys = walk.keys
  for j = i + 1, walk.n do
    local key = keys[j]
    local v = rawget(t, key)
    if v ~= nil then return key, v end
  end
  WALKS[t] = nil
  return nil
end

local function det_pairs(t)
  local mt = getmetatable_raw(t)
  local meta = type(mt) == "table" and rawget(mt, "__pairs") or nil
  if meta ~= nil then return meta(t) end
  if type(t) ~= "table" then
    error("bad argument #1 to 'for iterator' (table expected, got " .. type(t) .. ")", 2)
  end
  return det_next, t, nil
end

local NAMED = { table = true, ["function"] = true, thread = true, userdata = true }

local function det_tostring(v)
  if NAMED[type(v)] then
    local mt = getmetatable_raw(v)
    if type(mt) ~= "table" or (rawget(mt, "__tostring") == nil and rawget(mt, "__name") == nil) then
      local id = DET.ids[v]
      if id == nil then
        DET.count = DET.count + 1
        id = DET.count
        DET.ids[v] = id
      end
      return type(v) .. ": #" .. id
    end
  end
  return tostring(v)
end

local function det_format(fmt, ...)
  if type(fmt) == "string" and c_find(c_gsub(fmt, "%%%%", ""), "%%[-+ #0-9.]*p") then
    error(nondeterminism("string.format: %p gives a memory address, which changes on replay"), 2)
  end
  local n = select("#", ...)
  local args = { ... }
  for i = 1, n do
    if NAMED[type(args[i])] then args[i] = det_tostring(args[i]) end
  end
  return c_format(fmt, unpack(args, 1, n))
end

-- The string library of journaled processes (their `string` global, and
-- the methods of strings while one owns the state).
DET.tostring = det_tostring

local STRING_DET = {}
for k, v in next, string do STRING_DET[k] = v end
STRING_DET.format = det_format
VIEWS.string_det = setmetatable({}, readonly("string", STRING_DET))

-- Switches the state's mode for its next process.
local function journaled_mode(on)
  DET.on = on
  DET.ids = on and setmetatable({}, { __mode = "k" }) or nil
  DET.count = 0
  STRING_MT.__index = on and STRING_DET or string
end

-- A fresh global environment for one process (a journaled one with the
-- replay-safe functions above).
local function new_env(nondeterministic, journaled)
  journaled_mode(journaled == true)
  local env = own(fresh_env(nondeterministic and VIEWS.math or VIEWS.math_det))
  if journaled then
    env.pairs, env.next, env.tostring = det_pairs, det_next, det_tostring
    env.string = VIEWS.string_det
  end
  return env
end

-- Lightweight processes share one state: what `new_env` copies into each
-- environment is read through a locked `__index` instead, from a table no
-- script can reach (there is no `debug`), one per `math` variant. A
-- process's own globals are its env's own keys. The environment still
-- behaves exactly like an isolated one: whatever could tell the two apart
-- (`rawget`, `rawset`, `next` or `pairs` on it, `getmetatable` or
-- `setmetatable` of it, writing a library name such as `print = nil`) first
-- *materializes* it: copies the library into it and drops the metatable,
-- which makes it an isolated process's environment (copies of shared,
-- read-only values; the library table itself never leaves this file).
-- `load` is shared too: its default environment is the running process's
-- (`R.env`, from the process context), so a new environment holds nothing
-- but `_G`.
local LIGHT_LIB = {}
local current_env = R.env
local function light_load(chunk, name, _, e)
  return recheck(raw_load(chunk, name, "t", e or current_env()))
end

local function materialize(env)
  local lib = LIGHT_LIB[getmetatable_raw(env)]
  if lib == nil then return end
  for k, v in next, lib do
    if rawget(env, k) == nil then rawset_raw(env, k, v) end
  end
  setmetatable_raw(env, nil)
end

-- A lightweight process's `collectgarbage`: the state is shared, so a
-- "collect" is one incremental step (a full collection would pause every
-- process of the state); "count" is the shared state's.
local function light_collectgarbage(opt, ...)
  if opt == nil or opt == "collect" then
    collectgarbage("step", 0)
    return 0
  end
  return BASE.collectgarbage(opt, ...)
end

local function light_meta(math)
  local lib = fresh_env(math)
  lib.load, lib._G = light_load, nil
  local mt = {
    __index = lib,
    __newindex = function(env, k, v)
      if lib[k] ~= nil then materialize(env) end
      rawset_raw(env, k, v)
    end,
    __pairs = function(env)
      materialize(env)
      return next, env, nil
    end,
    __metatable = "locked",
  }
  LIGHT_LIB[mt] = lib
  lib.collectgarbage = light_collectgarbage
  lib.rawget = function(t, k)
    materialize(t)
    return rawget(t, k)
  end
  lib.rawset = function(t, k, v)
    materialize(t)
    return BASE.rawset(t, k, v)
  end
  lib.next = function(t, k)
    materialize(t)
    return next(t, k)
  end
  lib.getmetatable = function(t)
    materialize(t)
    return getmetatable(t)
  end
  lib.setmetatable = function(t, m)
    materialize(t)
    return BASE.setmetatable(t, m)
  end
  return mt
end
-- Made on a state's first lightweight process: an isolated state never
-- needs them (two library copies and their functions, about 4 KB).
local LIGHT = {}
local function light_mt(nondeterministic)
  local mt = LIGHT[nondeterministic]
  if mt == nil then
    mt = light_meta(nondeterministic and VIEWS.math or VIEWS.math_det)
    LIGHT[nondeterministic] = mt
  end
  return mt
end

-- A fresh global environment for one lightweight process (sized for its
-- one key, `_G`) and its `require` cache; with `factory` (a script compiled
-- by the engine's `factory_source`), also its main function: one call from
-- the engine per process.
local function new_light_env(nondeterministic, factory)
  if DET.on then journaled_mode(false) end
  local env = setmetatable({ _G = false }, light_mt(nondeterministic == true))
  env._G = env
  if factory then return env, {}, factory(env) end
  return env, {}
end

local function handler(e)
  if is_error(e) then return e end
  -- A plain table (or function, …) as an error has no text of its own: say
  -- what it is rather than print a heap address. A script's own
  -- __tostring may fail; the error still needs a message.
  local t, msg = type(e), nil
  if t == "string" or t == "number" then
    msg = tostring(e)
  else
    local mt = getmetatable_raw(e)
    local ok, text = false, nil
    if type(mt) == "table" and rawget(mt, "__tostring") ~= nil then ok, text = pcall(tostring, e) end
    msg = ok and text or "(error object is a " .. t .. " value)"
  end
  return runtime_error(msg, traceback("", 2))
end

-- With an entry, the chunk is loaded like a module (no arguments) and the
-- entry function gets the spawn arguments, packed in `args` (nil for none).
-- Not a vararg function: a vararg frame copies its function and parameters
-- above the arguments, and this frame is below the chunk's, whose first C
-- call (`require`) would then need more than the 40 stack slots a thread
-- starts with: the stack doubles (640 bytes more per idle process).
local function run_entry(main, env, entry, args)
  local r = main()
  local f
  if type(r) == "table" then f = r[entry] end
  if f == nil then f = env[entry] end
  if type(f) ~= "function" then
    error(R.invalid("entry function '" .. tostring(entry) .. "' not found"))
  end
  if args == nil then return f() end
  return f(unpack(args, 1, args.n))
end

-- Every process thread runs `xpcall(main, handler, ...)` (or, with an
-- entry, `xpcall(run_entry, handler, main, env, entry, args)`): the script
-- under a handler that turns any error into a structured error object with
-- a traceback. The thread's function is `xpcall` itself (the engine passes
-- the function to run and `handler` first), not a Lua function calling it:
-- a frame less under every script, so a shallow process stays within the
-- 40 stack slots a new thread starts with instead of doubling them (640
-- bytes per process).
local body = xpcall

return {
  new_env = new_env, new_light_env = new_light_env, body = body, wrap_fn = wrap_fn,
  run_entry = run_entry, handler = handler,
  readonly = readonly,
  eval_runner = readonly("eval_runner", EVAL), program_methods = PROGRAM,
  workflow_module = workflow_module,
}
