%% The Erlang half of Troupe's side-by-side benchmark (`troupe bench`,
%% `benches/side_by_side.sh`). Each function mirrors the entry function of
%% the same job in `src/bench.rs`'s Lua script: same algorithm, timed inside
%% the VM so start-up is not counted.
-module(troupe_bench).
-export([main/1]).

%% main([Rounds, Spawns, Idle, Sleepers0, Sleepers1, Cpu]) prints one
%% "NAME VALUE" line per job: ns per round trip, ns per spawned process,
%% bytes per idle process, seconds per sleepers fan-out, ms for the loop.
main([Rounds, Spawns, Idle, Sleepers0, Sleepers1, Cpu]) ->
    io:format("ping_pong ~.1f~n", [ping_pong(Rounds)]),
    io:format("spawn ~.1f~n", [fan_out(Spawns, fun() -> ok end) * 1.0e9 / Spawns]),
    io:format("memory ~.1f~n", [idle_memory(Idle)]),
    Sleeper = fun() -> receive after 10 -> ok end end,
    io:format("sleepers0 ~.4f~n", [fan_out(Sleepers0, Sleeper)]),
    io:format("sleepers1 ~.4f~n", [fan_out(Sleepers1, Sleeper)]),
    io:format("cpu ~.3f~n", [cpu(Cpu)]).

now_ns() -> erlang:monotonic_time(nanosecond).

%% M.ping / M.pong: a partner echoes each ping; the pinger waits for the
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

%% M.fan_out: trap exits, spawn N linked processes running Fun, wait for all
%% N exit messages; seconds.
fan_out(N, Fun) ->
    process_flag(trap_exit, true),
    T0 = now_ns(),
    spawn_n(N, Fun),
    wait(N),
    (now_ns() - T0) / 1.0e9.

spawn_n(0, _Fun) -> ok;
spawn_n(N, Fun) ->
    spawn_link(Fun),
    spawn_n(N - 1, Fun).

wait(0) -> ok;
wait(N) -> receive {'EXIT', _, normal} -> wait(N - 1) end.

%% M.idle: N processes blocked in receive; bytes of VM memory each.
idle_memory(N) ->
    garbage_collect(),
    M0 = erlang:memory(total),
    Pids = [spawn(fun() -> receive stop -> ok end end) || _ <- lists:seq(1, N)],
    M1 = erlang:memory(total),
    [P ! stop || P <- Pids],
    (M1 - M0) / N.

%% M.cpu: the same loop; milliseconds.
cpu(N) ->
    T0 = now_ns(),
    _ = cpu_loop(1, N, 0),
    (now_ns() - T0) / 1.0e6.

cpu_loop(I, N, Acc) when I > N -> Acc;
cpu_loop(I, N, Acc) -> cpu_loop(I + 1, N, Acc + I rem 7).
