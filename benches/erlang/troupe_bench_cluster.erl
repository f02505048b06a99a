%% The Erlang half of Troupe's cluster benchmark (`troupe bench --cluster`):
%% two nodes on loopback (`erl -sname`, one cookie), the same jobs as the
%% Lua scripts in `benches/harness/src/cluster.rs`, timed inside node a so
%% start-up and connecting are not counted.
-module(troupe_bench_cluster).
-export([main/1, echo/0, sink/0, child/0]).

%% main([Node, Rounds, Messages, Spawns]) connects to Node (node b, started
%% by the harness with this module on its code path) and prints one
%% "NAME VALUE" line per job: ns per remote round trip, ns per one-way
%% message, ns per remote spawn + run + exit.
main([Node, Rounds, Messages, Spawns]) ->
    connect(Node, 200),
    Echo = spawn(Node, ?MODULE, echo, []),
    %% Warm up, as the Troupe client does: the connection is made and the
    %% code loaded on both nodes before anything is timed.
    ping(Echo, 1, 100),
    io:format("ping_pong ~.1f~n", [timed(fun() -> ping(Echo, 1, Rounds) end) / Rounds]),
    Echo ! stop,
    Sink = spawn(Node, ?MODULE, sink, []),
    io:format("one_way ~.1f~n", [timed(fun() -> one_way(Sink, Messages) end) / Messages]),
    process_flag(trap_exit, true),
    spawn_remote(Node, 100),
    io:format("spawn ~.1f~n", [timed(fun() -> spawn_remote(Node, Spawns) end) / Spawns]).

%% Node b comes up while node a starts: tries for up to N × 50 ms.
connect(Node, 0) -> error({cannot_connect, Node});
connect(Node, N) ->
    case net_kernel:connect_node(Node) of
        true -> ok;
        _ -> timer:sleep(50), connect(Node, N - 1)
    end.

now_ns() -> erlang:monotonic_time(nanosecond).

timed(F) ->
    T0 = now_ns(),
    F(),
    now_ns() - T0.

%% The remote ping-pong: each ping waits for its pong.
ping(_Echo, I, N) when I > N -> ok;
ping(Echo, I, N) ->
    Echo ! {ping, self(), I},
    receive {pong, I} -> ping(Echo, I + 1, N) end.

echo() ->
    receive
        {ping, From, I} -> From ! {pong, I}, echo();
        stop -> ok
    end.

%% One way: N messages to a sink on node b, which answers once it has them
%% all.
one_way(Sink, N) ->
    Sink ! {go, self(), N},
    send_n(Sink, 1, N),
    receive done -> ok end.

send_n(_Sink, I, N) when I > N -> ok;
send_n(Sink, I, N) ->
    Sink ! {msg, I},
    send_n(Sink, I + 1, N).

sink() ->
    receive {go, From, N} -> count(N), From ! done end.

count(0) -> ok;
count(N) -> receive {msg, _} -> count(N - 1) end.

%% Remote spawn + run + exit: N linked children on node b, each ending at
%% once; every EXIT collected.
spawn_remote(Node, N) ->
    [spawn_link(Node, ?MODULE, child, []) || _ <- lists:seq(1, N)],
    wait(N).

child() -> ok.

wait(0) -> ok;
wait(N) -> receive {'EXIT', _, normal} -> wait(N - 1) end.
