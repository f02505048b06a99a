%% The Erlang half of Troupe's side-by-side benchmarks (run by run.sh).
%% Each function mirrors the Lua script of the same name in this folder:
%% same algorithm, timed inside the VM so start-up is not counted.
-module(troupe_bench).
-export([main/1]).

%% main([PingRounds, Spawns]) prints "ping_pong NS" and "spawn NS" (ns per
%% round trip, ns per spawned process).
main([Rounds, Spawns]) ->
    io:format("ping_pong ~.1f~n", [ping_pong(Rounds)]),
    io:format("spawn ~.1f~n", [spawn_wait(Spawns)]).

now_ns() -> erlang:monotonic_time(nanosecond).

%% ping_pong.lua: a partner echoes each ping; the pinger waits for the
%% matching pong before sending the next.
ping_pong(N) ->
    Peer = spawn(fun pong/0),
    T0 = now_ns(),
    ping(Peer, 1, N),
    Dt = now_ns() - T0,
    Peer ! stop,
    Dt / N.

ping(_Peer, I, N) when I > N -> ok;
ping(Peer, I, N) ->
    Peer ! {ping, self(), I},
    receive {pong, I} -> ping(Peer, I + 1, N) end.

pong() ->
    receive
        {ping, From, I} -> From ! {pong, I}, pong();
        stop -> ok
    end.

%% spawn.lua: trap exits, spawn N linked processes that end at once, and
%% wait for all N exit messages.
spawn_wait(N) ->
    process_flag(trap_exit, true),
    T0 = now_ns(),
    spawn_n(N),
    wait(N),
    (now_ns() - T0) / N.

spawn_n(0) -> ok;
spawn_n(N) ->
    spawn_link(fun() -> ok end),
    spawn_n(N - 1).

wait(0) -> ok;
wait(N) -> receive {'EXIT', _, normal} -> wait(N - 1) end.
