// caf_bench - bench_actors' five figures, measured with CAF 0.17 on ONE
// scheduler thread (scheduler.max-threads = 1), for a side-by-side run.
//
// Mirrors bench/bench_actors.c at scale 1:
//   pingpong  two actors pass one token {token, n}; each hop sends a new
//             {token, n-1} to the partner until n reaches 0 (4e6 * scale)
//   ring      1000 actors, same token, 4e6 * scale hops
//   call      request/reply round trips, one outstanding request at a time
//             (request(...).then chain, 5 s timeout like skick_call's 5000 ms;
//             a second figure without a timeout), 1e6 * scale
//   spawn     a spawner actor spawns 1e5 actors, sends each one message;
//             timed until the last one has handled it (1e5 * min(scale, 1))
//   idle      heap (mallinfo2) and RSS delta over 1e5 * min(scale, 1) idle
//             actors, after each has started (made its behaviour)
//
// Messages are CAF typed tuples (atom + int64); Skick's are JSON objects.
// Setup (spawning, linking) is outside the timed region, as in bench_actors;
// there is no warm-up run in either.
//
// Usage: caf_bench [scale]   build: g++ -O2 -std=c++17 caf_bench.cpp -lcaf_core -pthread

#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include "caf/all.hpp"

using namespace caf;

using token_atom = atom_constant<atom("token")>;
using link_atom = atom_constant<atom("link")>;
using done_atom = atom_constant<atom("done")>;
using work_atom = atom_constant<atom("work")>;
using go_atom = atom_constant<atom("go")>;
using q_atom = atom_constant<atom("q")>;

namespace {

double now_s() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

// The blocking main-thread actor that waits for "done" (set once per run).
actor g_waiter;

// ---- ping-pong and ring: forward the token to "next" while n > 0 ----------

class hop : public event_based_actor {
public:
  explicit hop(actor_config& cfg) : event_based_actor(cfg) {
  }

  behavior make_behavior() override {
    return {
      [=](link_atom, const actor& next) { next_ = next; },
      [=](token_atom, int64_t n) {
        if (n <= 0) {
          send(g_waiter, done_atom::value);
          return;
        }
        send(next_, token_atom::value, n - 1);
      },
    };
  }

private:
  actor next_;
};

double run_token(scoped_actor& self, const actor& first, int64_t hops) {
  double t0 = now_s();
  self->send(first, token_atom::value, hops);
  self->receive([](done_atom) {});
  return static_cast<double>(hops) / (now_s() - t0);
}

void link_all(scoped_actor& self, const std::vector<actor>& as) {
  for (size_t i = 0; i < as.size(); i++)
    self->send(as[i], link_atom::value, as[(i + 1) % as.size()]);
}

// Setup outside the timed region (bench_actors runs the shard until idle
// after linking): each actor gets a token with n = 0 after its link and
// answers "done"; once all have answered, every link is in place.
void settle(scoped_actor& self, const std::vector<actor>& as) {
  for (auto& a : as)
    self->send(a, token_atom::value, int64_t{0});
  for (size_t i = 0; i < as.size(); i++)
    self->receive([](done_atom) {});
}

void kill_all(std::vector<actor>& as) {
  for (auto& a : as)
    anon_send_exit(a, exit_reason::user_shutdown);
  as.clear();
}

void bench_pingpong(actor_system& sys, scoped_actor& self, int64_t hops) {
  std::vector<actor> as{sys.spawn<hop>(), sys.spawn<hop>()};
  link_all(self, as);
  settle(self, as);
  printf("caf_pingpong_msgs_per_s %.0f\n", run_token(self, as[0], hops));
  fflush(stdout);
  kill_all(as);
}

void bench_ring(actor_system& sys, scoped_actor& self, int n, int64_t hops) {
  std::vector<actor> as;
  for (int i = 0; i < n; i++)
    as.push_back(sys.spawn<hop>());
  link_all(self, as);
  settle(self, as);
  printf("caf_ring_%d_hops_per_s %.0f\n", n, run_token(self, as[0], hops));
  fflush(stdout);
  kill_all(as);
}

// ---- spawn: a spawner creates N actors that each handle one message -------

std::atomic<int64_t> g_handled{0};
std::atomic<int64_t> g_started{0};
int64_t g_target = 0;
// Handles of the spawned actors: in Skick the runtime keeps spawned actors
// alive until they stop; a CAF actor with no handle left is destroyed, so
// the spawner keeps one (8 bytes, reserved before any measurement).
std::vector<actor> g_leaves;

std::atomic<int64_t> g_live{0}; // leaf objects not yet destroyed

class leaf : public event_based_actor {
public:
  explicit leaf(actor_config& cfg) : event_based_actor(cfg) {
    g_live.fetch_add(1);
  }

  ~leaf() override {
    g_live.fetch_sub(1);
  }

  behavior make_behavior() override {
    g_started.fetch_add(1);
    return {
      [=](work_atom) {
        if (g_handled.fetch_add(1, std::memory_order_relaxed) + 1 == g_target)
          send(g_waiter, done_atom::value);
      },
    };
  }
};

class spawner : public event_based_actor {
public:
  explicit spawner(actor_config& cfg) : event_based_actor(cfg) {
  }

  behavior make_behavior() override {
    return {
      // go n: spawn n leaves and send each one "work"
      [=](go_atom, int64_t n) {
        for (int64_t i = 0; i < n; i++) {
          auto a = spawn<leaf>();
          send(a, work_atom::value);
          g_leaves.push_back(std::move(a));
        }
      },
      // idle n: spawn n leaves, send nothing
      [=](work_atom, int64_t n) {
        for (int64_t i = 0; i < n; i++)
          g_leaves.push_back(spawn<leaf>());
      },
    };
  }
};

size_t heap_bytes() {
  struct mallinfo2 mi = mallinfo2(); // sums every arena (main and worker thread)
  return mi.uordblks + mi.hblkhd;
}

size_t rss_bytes() {
  long pages = 0, rss = 0;
  if (FILE* f = fopen("/proc/self/statm", "r")) {
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
      rss = 0;
    fclose(f);
  }
  return static_cast<size_t>(rss) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

void wait_started(int64_t n) {
  while (g_started.load() < n)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void release_leaves() {
  for (auto& a : g_leaves)
    anon_send_exit(a, exit_reason::user_shutdown);
  g_leaves.clear();
}

void bench_spawn(actor_system& sys, scoped_actor& self, int64_t n) {
  auto sp = sys.spawn<spawner>();
  g_leaves.clear();
  g_leaves.reserve(static_cast<size_t>(n));
  g_handled = 0;
  g_started = 0;
  g_target = n;
  double t0 = now_s();
  self->send(sp, go_atom::value, n);
  self->receive([](done_atom) {});
  double dt = now_s() - t0;
  if (g_handled.load() != n)
    fprintf(stderr, "caf_bench: %lld of %lld spawned actors handled their message\n",
            static_cast<long long>(g_handled.load()), static_cast<long long>(n));
  printf("caf_spawn_actors_per_s %.0f\n", static_cast<double>(n) / dt);
  fflush(stdout);
  release_leaves();
  anon_send_exit(sp, exit_reason::user_shutdown);
}

// Memory of idle actors: spawn n (no traffic), let them start, compare heap
// and RSS, trimming the allocator before each reading as bench_actors does.
void bench_idle(actor_system& sys, scoped_actor& self, int64_t n) {
  auto sp = sys.spawn<spawner>();
  // Wait until the previous test's leaves are destroyed, then a moment more
  // for the spawner to start and the worker to go idle.
  for (int i = 0; i < 30000 && g_live.load() > 0; i++)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  g_leaves.clear();
  g_leaves.shrink_to_fit();
  g_leaves.reserve(static_cast<size_t>(n));
  g_started = 0;
  malloc_trim(0);
  size_t heap0 = heap_bytes(), rss0 = rss_bytes();
  self->send(sp, work_atom::value, n);
  wait_started(n);
  // The spawner has returned once every leaf has started; give the worker a
  // moment to go idle so that no message is in flight when we measure.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  malloc_trim(0);
  size_t heap1 = heap_bytes(), rss1 = rss_bytes();
  printf("caf_idle_actor_heap_bytes %.0f\n",
         (static_cast<double>(heap1) - static_cast<double>(heap0)) / n);
  printf("caf_idle_actor_rss_bytes %.0f\n",
         (static_cast<double>(rss1) - static_cast<double>(rss0)) / n);
  fflush(stdout);
  release_leaves();
  anon_send_exit(sp, exit_reason::user_shutdown);
}

// ---- request/reply round trips ----------------------------------------------

class responder : public event_based_actor {
public:
  explicit responder(actor_config& cfg) : event_based_actor(cfg) {
  }

  behavior make_behavior() override {
    return {
      [](q_atom) { return ok_atom::value; },
    };
  }
};

class asker : public event_based_actor {
public:
  asker(actor_config& cfg, actor to, int64_t n, bool timeout)
    : event_based_actor(cfg), to_(std::move(to)), left_(n), timeout_(timeout) {
  }

  behavior make_behavior() override {
    return {
      [=](go_atom) { next(); },
    };
  }

private:
  void next() {
    if (left_-- == 0) {
      send(g_waiter, done_atom::value);
      return;
    }
    auto on_reply = [=](ok_atom) { next(); };
    auto on_error = [=](error& err) {
      fprintf(stderr, "caf_bench: request failed: %s\n",
              system().render(err).c_str());
      send(g_waiter, done_atom::value);
    };
    if (timeout_)
      request(to_, std::chrono::seconds(5), q_atom::value).then(on_reply, on_error);
    else
      request(to_, infinite, q_atom::value).then(on_reply, on_error);
  }

  actor to_;
  int64_t left_;
  bool timeout_;
};

void bench_call(actor_system& sys, scoped_actor& self, int64_t n, bool timeout) {
  auto r = sys.spawn<responder>();
  auto a = sys.spawn<asker>(r, n, timeout);
  double t0 = now_s();
  self->send(a, go_atom::value);
  self->receive([](done_atom) {});
  double dt = now_s() - t0;
  printf("%s %.0f\n",
         timeout ? "caf_call_round_trips_per_s" : "caf_call_no_timeout_round_trips_per_s",
         static_cast<double>(n) / dt);
  fflush(stdout);
  anon_send_exit(a, exit_reason::user_shutdown);
  anon_send_exit(r, exit_reason::user_shutdown);
}

} // namespace

int main(int argc, char** argv) {
  double scale = argc > 1 ? strtod(argv[1], nullptr) : 1.0;
  if (scale <= 0)
    scale = 1.0;
  int64_t small = static_cast<int64_t>(1e5 * (scale < 1 ? scale : 1));
  g_leaves.reserve(static_cast<size_t>(small));
  actor_system_config cfg;
  cfg.set("scheduler.max-threads", 1);
  actor_system sys{cfg};
  if (sys.scheduler().num_workers() != 1) {
    fprintf(stderr, "caf_bench: expected 1 scheduler thread, got %zu\n",
            sys.scheduler().num_workers());
    return 1;
  }
  {
    scoped_actor self{sys};
    g_waiter = actor_cast<actor>(self);
    bench_pingpong(sys, self, static_cast<int64_t>(4e6 * scale));
    bench_ring(sys, self, 1000, static_cast<int64_t>(4e6 * scale));
    bench_call(sys, self, static_cast<int64_t>(1e6 * scale), true);
    bench_call(sys, self, static_cast<int64_t>(1e6 * scale), false);
    bench_spawn(sys, self, small);
    bench_idle(sys, self, small);
    g_waiter = nullptr;
  }
  return 0;
}
