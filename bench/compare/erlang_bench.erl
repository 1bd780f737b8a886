%% erlang_bench - bench_actors' five figures, measured with Erlang/OTP on ONE
%% scheduler (run with erl +S 1), for a side-by-side run.
%%
%% Mirrors bench/bench_actors.c at scale 1:
%%   pingpong  two processes pass one token {token, N}; each hop sends a new
%%             {token, N-1} to the partner until N reaches 0 (4e6 * scale)
%%   ring      1000 processes, same token, 4e6 * scale hops
%%   call      gen_server:call round trips with a 5000 ms timeout (monitor +
%%             timeout, like skick_call), one at a time, 1e6 * scale; plus a
%%             bare make_ref/receive variant
%%   spawn     a spawner process spawns 1e5 processes and sends each one
%%             message; timed until the last one has handled it (an atomics
%%             counter stands for bench_actors' g_handled++). The processes
%%             stay alive afterwards, as Skick's actors do.
%%   idle      erlang:memory(processes) and OS RSS delta over 1e5 idle
%%             processes, plus process_info(P, memory) of one of them
%%
%% Setup (spawning, linking) is outside the timed region; no warm-up run.
%%
%% Build: erlc erlang_bench.erl
%% Run:   erl +S 1 -noshell -pa DIR -run erlang_bench main [scale]
-module(erlang_bench).
-behaviour(gen_server).

-export([main/0, main/1]).
-export([hop/0, leaf/3, idle_leaf/0, raw_responder/0]).
-export([init/1, handle_call/3, handle_cast/2]).

main() -> main([]).

main(Args) ->
    Scale = case Args of
                [S | _] -> to_float(S);
                [] -> 1.0
            end,
    Small = round(1.0e5 * min(Scale, 1.0)),
    case erlang:system_info(schedulers_online) of
        1 -> ok;
        N -> io:format(standard_error,
                       "erlang_bench: expected 1 scheduler (erl +S 1), got ~b~n", [N]),
             halt(1)
    end,
    %% Idle memory first, in a fresh VM: Erlang's allocators keep freed
    %% carriers resident, so after the spawn test new processes would reuse
    %% already-resident memory and the RSS delta would read low.
    idle(Small),
    pingpong(round(4.0e6 * Scale)),
    ring(1000, round(4.0e6 * Scale)),
    call(round(1.0e6 * Scale)),
    call_raw(round(1.0e6 * Scale)),
    spawn_bench(Small),
    halt(0).

to_float(S) when is_atom(S) -> to_float(atom_to_list(S));
to_float(S) ->
    V = try list_to_float(S)
        catch error:badarg ->
            try float(list_to_integer(S))
            catch error:badarg ->
                try list_to_float("0" ++ S) catch error:badarg -> 1.0 end
            end
        end,
    if V =< 0 -> 1.0; true -> V end.

now_s() -> erlang:monotonic_time(nanosecond) / 1.0e9.

emit(Name, Value) -> io:format("erlang_~s ~b~n", [Name, round(Value)]).

%% ---- ping-pong and ring: forward the token to Next while N > 0 -----------

hop() ->
    receive {link, Next, Waiter} -> hop(Next, Waiter) end.

hop(Next, Waiter) ->
    receive
        {token, N} when N =< 0 -> Waiter ! done, hop(Next, Waiter);
        {token, N} -> Next ! {token, N - 1}, hop(Next, Waiter);
        stop -> ok
    end.

%% Spawn, link and settle (every process has its link and has answered a
%% token with N = 0) outside the timed region.
make_hops(K) ->
    Ps = [spawn(?MODULE, hop, []) || _ <- lists:seq(1, K)],
    Nexts = tl(Ps) ++ [hd(Ps)],
    [P ! {link, Nx, self()} || {P, Nx} <- lists:zip(Ps, Nexts)],
    [P ! {token, 0} || P <- Ps],
    [receive done -> ok end || _ <- Ps],
    Ps.

run_token(First, Hops) ->
    T0 = now_s(),
    First ! {token, Hops},
    receive done -> ok end,
    Hops / (now_s() - T0).

pingpong(Hops) ->
    Ps = make_hops(2),
    emit("pingpong_msgs_per_s", run_token(hd(Ps), Hops)),
    [P ! stop || P <- Ps].

ring(K, Hops) ->
    Ps = make_hops(K),
    emit(io_lib:format("ring_~b_hops_per_s", [K]), run_token(hd(Ps), Hops)),
    [P ! stop || P <- Ps].

%% ---- request/reply round trips ---------------------------------------------

init([]) -> {ok, nostate}.
handle_call(q, _From, S) -> {reply, ok, S}.
handle_cast(_, S) -> {noreply, S}.

asker(Parent, Fun, N) ->
    receive go -> ok end,
    T0 = now_s(),
    ok = Fun(N),
    Parent ! {done, now_s() - T0}.

timed_calls(Fun, N) ->
    Self = self(),
    A = spawn(fun() -> asker(Self, Fun, N) end),
    A ! go,
    receive {done, Dt} -> N / Dt end.

call(N) ->
    {ok, R} = gen_server:start(?MODULE, [], []),
    Loop = fun L(0) -> ok;
               L(K) -> ok = gen_server:call(R, q, 5000), L(K - 1)
           end,
    emit("call_round_trips_per_s", timed_calls(Loop, N)),
    gen_server:stop(R).

raw_responder() ->
    receive
        {q, From, Ref} -> From ! {Ref, ok}, raw_responder();
        stop -> ok
    end.

call_raw(N) ->
    R = spawn(?MODULE, raw_responder, []),
    Loop = fun L(0) -> ok;
               L(K) ->
                   Ref = make_ref(),
                   R ! {q, self(), Ref},
                   receive {Ref, ok} -> L(K - 1) after 5000 -> timeout end
           end,
    emit("call_raw_round_trips_per_s", timed_calls(Loop, N)),
    R ! stop.

%% ---- spawn: a spawner creates N processes that each handle one message ----

leaf(Counter, Target, Waiter) ->
    receive
        work ->
            case atomics:add_get(Counter, 1, 1) of
                Target -> Waiter ! done;
                _ -> ok
            end,
            idle_leaf()
    end.

idle_leaf() ->
    receive stop -> ok end.

spawner(Counter, Target, Waiter) ->
    receive
        {go, N} -> spawn_n(N, Counter, Target, Waiter)
    end.

spawn_n(0, _, _, _) -> ok;
spawn_n(N, C, T, W) ->
    P = spawn(?MODULE, leaf, [C, T, W]),
    P ! work,
    spawn_n(N - 1, C, T, W).

spawn_bench(N) ->
    Counter = atomics:new(1, []),
    Self = self(),
    Sp = spawn(fun() -> spawner(Counter, N, Self) end),
    T0 = now_s(),
    Sp ! {go, N},
    receive done -> ok end,
    Dt = now_s() - T0,
    case atomics:get(Counter, 1) of
        N -> ok;
        H -> io:format(standard_error,
                       "erlang_bench: ~b of ~b spawned processes handled their message~n",
                       [H, N])
    end,
    emit("spawn_actors_per_s", N / Dt),
    %% The leaves stay alive (as Skick's actors do) until here; the spawner
    %% kept no list of them, so find them by their initial call.
    stop_all({?MODULE, leaf, 3}).

stop_all(InitialCall) ->
    Ps = [P || P <- erlang:processes(),
               erlang:process_info(P, initial_call) =:= {initial_call, InitialCall}],
    Refs = [{P, erlang:monitor(process, P)} || P <- Ps],
    [P ! stop || P <- Ps],
    [receive {'DOWN', Ref, process, P, _} -> ok end || {P, Ref} <- Refs],
    ok.

%% ---- memory of idle processes ---------------------------------------------

rss_bytes() ->
    {ok, Bin} = file:read_file("/proc/self/statm"),
    [_, Rss | _] = string:lexemes(binary_to_list(Bin), " \n"),
    list_to_integer(Rss) * 4096.

idle_spawner(N) ->
    Ps = [spawn(?MODULE, idle_leaf, []) || _ <- lists:seq(1, N)],
    Sample = hd(Ps),
    %% With one scheduler the leaves run in spawn order; wait until all are
    %% parked in receive.
    wait_waiting(Ps),
    receive {report, To} -> To ! {started, Sample} end,
    receive stop -> [P ! stop || P <- Ps] end.

wait_waiting([]) -> ok;
wait_waiting([P | Rest] = Ps) ->
    case erlang:process_info(P, status) of
        {status, waiting} -> wait_waiting(Rest);
        _ -> erlang:yield(), wait_waiting(Ps)
    end.

idle(N) ->
    [erlang:garbage_collect(P) || P <- erlang:processes()],
    timer:sleep(200),
    Mem0 = erlang:memory(processes),
    Rss0 = rss_bytes(),
    Sp = spawn(fun() -> idle_spawner(N) end),
    Sp ! {report, self()},
    Sample = receive {started, S} -> S end,
    %% The spawner holds the pid list (N cons cells and pids on its heap);
    %% subtract its own size so only the idle processes are counted.
    {memory, SpMem} = erlang:process_info(Sp, memory),
    Mem1 = erlang:memory(processes),
    Rss1 = rss_bytes(),
    {memory, One} = erlang:process_info(Sample, memory),
    emit("idle_actor_heap_bytes", (Mem1 - Mem0 - SpMem) / N),
    emit("idle_actor_rss_bytes", (Rss1 - Rss0) / N),
    emit("idle_process_info_memory_bytes", One),
    Sp ! stop,
    stop_all({?MODULE, idle_leaf, 0}).
