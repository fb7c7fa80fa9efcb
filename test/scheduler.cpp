// The process pool's scheduler (detail/scheduler.hpp) driven without processes: simulated
// workers, a simulated clock, and the invariant checked after every event of many randomized
// runs (mixed durations, workers dying, max_tasks_per_child, kill, cancel, shutdown). The same
// shapes on real processes are in process_pool_executor.cpp.
#include <futura/detail/scheduler.hpp>
#include <futura/detail/wire.hpp>

#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <numeric>
#include <optional>
#include <queue>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace {

using futura::detail::CallInfo;
using futura::detail::CallKey;
using futura::detail::Scheduler;
using futura::detail::SchedulerHost;
using futura::detail::SchedulerOptions;
using futura::detail::SentCall;

/// One submitted call of the simulation.
struct SimTask
{
    double duration = 0;
    CallKey key = 1;
    enum class State
    {
        pending,
        waiting_again, // taken back, marked running, in the parent
        sent,
        done,
        failed,
        cancelled,
    } state = State::pending;
    int runs = 0;           ///< how often a worker started it
    double started_at = -1; ///< when a worker last started it
    bool cancel_requested = false;
};

/// A simulated pool: the scheduler's host, with workers that run calls for their duration,
/// claim each before running it (or skip it if revoked), and answer after a channel delay.
class Simulation final : public SchedulerHost
{
public:
    struct Settings
    {
        SchedulerOptions options;
        double startup = 0.005;     ///< a worker's time from start to ready
        double answer_delay = 5e-5; ///< from a worker's answer to the parent reading it
    };

    explicit Simulation(Settings settings) : settings_(settings), scheduler_(settings.options) {}

    // ----- the test's controls -------------------------------------------------------------

    std::size_t submit_at(double time, double duration, CallKey key)
    {
        tasks_.push_back(SimTask{duration, key});
        const std::size_t index = tasks_.size() - 1;
        at(time, [this, index] {
            if (shut_down_) {
                tasks_[index].state = SimTask::State::cancelled;
                return;
            }
            pending_.push_back(index);
        });
        return index;
    }

    /// Python's cancel(): succeeds only while the call waits in the parent, not started.
    void cancel_at(double time, std::size_t index)
    {
        at(time, [this, index] {
            auto& task = tasks_[index];
            if (task.state == SimTask::State::pending) {
                task.state = SimTask::State::cancelled;
                std::erase(pending_, index);
            }
        });
    }

    /// kill(future): a call never started is taken back; a running one has its worker killed.
    void kill_at(double time, std::size_t index)
    {
        at(time, [this, index] {
            auto& task = tasks_[index];
            if (task.state == SimTask::State::pending) {
                task.state = SimTask::State::cancelled;
                std::erase(pending_, index);
                return;
            }
            if (task.state == SimTask::State::waiting_again) {
                task.state = SimTask::State::cancelled;
                std::erase(waiting_again_, index);
                return;
            }
            const auto found = scheduler_.find(&tasks_[index]);
            if (!found) {
                return;
            }
            if (try_revoke(found->worker, found->call)) {
                scheduler_.forget(found->worker, found->call.id);
                task.state = SimTask::State::cancelled;
                return;
            }
            scheduler_.mark_started(found->worker, found->call.id);
            crash(found->worker);
        });
    }

    /// A worker dies (a crash, the OOM killer): the call it runs fails, the others go on.
    void crash_one_at(double time, std::size_t pick)
    {
        at(time, [this, pick] {
            if (workers_.empty()) {
                return;
            }
            auto it = workers_.begin();
            std::advance(it, static_cast<std::ptrdiff_t>(pick % workers_.size()));
            crash(it->first);
        });
    }

    void shutdown_at(double time)
    {
        at(time, [this] { shut_down_ = true; });
    }

    /// Runs every event; after each, the scheduler dispatches and the invariant is checked.
    void run()
    {
        while (!events_.empty()) {
            auto event = events_.top();
            events_.pop();
            now_ = event.time;
            event.action();
            scheduler_.dispatch(*this);
            ++decisions_;
            if (!scheduler_.no_idle_worker_while_work_waits(waiting())) {
                BOOST_FAIL("at t=" << now_
                                   << " a ready worker is idle while a call waits: " << describe());
            }
            if (shut_down_ && waiting() == 0) {
                retire_idle_workers();
            }
        }
    }

    /// Seconds since the simulation began.
    [[nodiscard]] double elapsed() const noexcept { return now_; }
    [[nodiscard]] const std::vector<SimTask>& tasks() const noexcept { return tasks_; }
    [[nodiscard]] std::size_t decisions() const noexcept { return decisions_; }
    [[nodiscard]] std::size_t workers_started() const noexcept { return workers_started_; }
    [[nodiscard]] std::size_t revocations() const noexcept { return revocations_; }

    // ----- SchedulerHost ---------------------------------------------------------------------

    [[nodiscard]] Clock::time_point now() const override
    {
        return Clock::time_point{} +
               std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(now_));
    }

    [[nodiscard]] std::size_t waiting() const override
    {
        return pending_.size() + waiting_again_.size();
    }

    std::optional<CallInfo> peek_waiting() override
    {
        if (!waiting_again_.empty()) {
            return CallInfo{tasks_[waiting_again_.front()].key, 1};
        }
        if (!pending_.empty()) {
            return CallInfo{tasks_[pending_.front()].key, 1};
        }
        return std::nullopt;
    }

    std::optional<SentCall> send_next(std::size_t number) override
    {
        auto& queue = !waiting_again_.empty() ? waiting_again_ : pending_;
        if (queue.empty()) {
            return std::nullopt;
        }
        const std::size_t index = queue.front();
        queue.pop_front();
        auto& worker = workers_.at(number);
        BOOST_REQUIRE_MESSAGE(worker.ready && !worker.leaving,
                              "a call was sent to a worker that is not ready or is leaving");
        auto& task = tasks_[index];
        task.state = SimTask::State::sent;
        const std::uint64_t id = next_id_++;
        worker.claims[id] = Claim::offered;
        worker.inbox.push_back({id, index});
        if (!worker.running) {
            start_next(number);
        }
        return SentCall{&task, id, CallInfo{task.key, 1}, false};
    }

    bool try_revoke(std::size_t number, const SentCall& call) override
    {
        auto& claim = workers_.at(number).claims.at(call.id);
        if (claim != Claim::offered) {
            return false;
        }
        claim = Claim::revoked;
        ++revocations_;
        return true;
    }

    void wait_again(std::vector<SentCall> calls) override
    {
        for (auto it = calls.rbegin(); it != calls.rend(); ++it) {
            const auto index =
                static_cast<std::size_t>(static_cast<SimTask*>(it->task) - tasks_.data());
            tasks_[index].state = SimTask::State::waiting_again;
            waiting_again_.push_front(index);
        }
    }

    bool start_worker() override
    {
        const std::size_t number = scheduler_.add_worker();
        workers_[number] = SimWorker{};
        ++workers_started_;
        at(now_ + settings_.startup, [this, number] {
            if (workers_.contains(number)) {
                workers_[number].ready = true;
                scheduler_.worker_ready(number);
            }
        });
        return true;
    }

private:
    enum class Claim
    {
        offered,
        claimed,
        revoked
    };

    struct SimWorker
    {
        bool ready = false;
        bool leaving = false; // max_tasks_per_child reached
        std::optional<std::uint64_t> running;
        std::deque<std::pair<std::uint64_t, std::size_t>> inbox; // calls received, in order
        std::map<std::uint64_t, Claim> claims;
        std::size_t answered = 0;
        std::uint64_t generation = 0; // events of a dead worker's run are void
    };

    struct Event
    {
        double time;
        std::uint64_t sequence;
        std::function<void()> action;
        bool operator>(const Event& other) const
        {
            return time != other.time ? time > other.time : sequence > other.sequence;
        }
    };

    void at(double time, std::function<void()> action)
    {
        events_.push(Event{time, next_sequence_++, std::move(action)});
    }

    /// The worker takes its next call: claims it and runs it, or skips it if taken back.
    void start_next(std::size_t number)
    {
        auto& worker = workers_.at(number);
        while (!worker.inbox.empty()) {
            const auto [id, index] = worker.inbox.front();
            worker.inbox.pop_front();
            auto& claim = worker.claims.at(id);
            if (claim != Claim::offered) {
                BOOST_REQUIRE(claim == Claim::revoked);
                continue; // the parent took it back: it runs elsewhere
            }
            claim = Claim::claimed;
            worker.running = id;
            ++tasks_[index].runs;
            tasks_[index].started_at = now_;
            const auto generation = worker.generation;
            at(now_ + tasks_[index].duration,
               [this, number, id, index, generation] { finish(number, id, index, generation); });
            return;
        }
        worker.running.reset();
    }

    void finish(std::size_t number, std::uint64_t id, std::size_t index, std::uint64_t generation)
    {
        const auto found = workers_.find(number);
        if (found == workers_.end() || found->second.generation != generation) {
            return; // it died meanwhile
        }
        const double ran = tasks_[index].duration;
        pending_answers_[number].push_back(id);
        at(now_ + settings_.answer_delay,
           [this, number, id, index, ran] { deliver(number, id, index, ran); });
        start_next(number);
    }

    void deliver(std::size_t number, std::uint64_t id, std::size_t index, double ran)
    {
        auto& answers = pending_answers_[number];
        const auto at_answer = std::find(answers.begin(), answers.end(), id);
        if (at_answer == answers.end()) {
            return; // delivered when the worker died
        }
        answers.erase(at_answer);
        const auto call = scheduler_.answered(number, id, ran);
        BOOST_REQUIRE(call.task == &tasks_[index]);
        tasks_[index].state = SimTask::State::done;
        auto& worker = workers_.at(number);
        ++worker.answered;
        const auto limit = settings_.options.max_tasks_per_child;
        if (limit != 0 && worker.answered >= limit) {
            BOOST_REQUIRE_MESSAGE(scheduler_.unanswered(number).empty(),
                                  "a worker was sent more calls than it runs before retiring");
            worker.leaving = true;
            scheduler_.stop_sending(number);
            at(now_ + settings_.answer_delay, [this, number] { remove(number, false); });
        }
    }

    void crash(std::size_t number)
    {
        if (!workers_.contains(number)) {
            return;
        }
        // As the pool does: answers already sent are read before the death is handled.
        for (const auto id : std::vector<std::uint64_t>(pending_answers_[number])) {
            const auto& call = scheduler_.unanswered(number).front();
            BOOST_REQUIRE(call.id == id);
            const auto index =
                static_cast<std::size_t>(static_cast<SimTask*>(call.task) - tasks_.data());
            deliver(number, id, index, tasks_[index].duration);
        }
        remove(number, true);
    }

    void remove(std::size_t number, bool crashed)
    {
        if (!workers_.contains(number)) {
            return; // gone already (retired, then shut down)
        }
        auto& worker = workers_.at(number);
        auto lost = scheduler_.remove_worker(number);
        if (!lost.empty() && worker.claims.at(lost.front().id) == Claim::claimed) {
            BOOST_REQUIRE(crashed);
            static_cast<SimTask*>(lost.front().task)->state = SimTask::State::failed;
            lost.pop_front();
        }
        for (const auto& call : lost) {
            BOOST_REQUIRE_MESSAGE(worker.claims.at(call.id) == Claim::offered,
                                  "a call behind the running one had started");
        }
        wait_again({lost.begin(), lost.end()});
        workers_.erase(number);
        pending_answers_.erase(number);
    }

    void retire_idle_workers()
    {
        std::vector<std::size_t> idle;
        for (const auto& [number, worker] : workers_) {
            // One still starting may be wanted for calls queued ahead on the others.
            if (worker.ready && scheduler_.unanswered(number).empty()) {
                idle.push_back(number);
            }
        }
        for (const auto number : idle) {
            scheduler_.stop_sending(number);
            remove(number, false);
        }
    }

    std::string describe() const
    {
        std::ostringstream text;
        text << "waiting in the parent " << waiting() << ";";
        for (const auto& [number, worker] : workers_) {
            text << " worker " << number << (worker.ready ? "" : " (starting)") << ": "
                 << scheduler_.unanswered(number).size() << " unanswered;";
        }
        return std::move(text).str();
    }

    Settings settings_;
    Scheduler scheduler_;
    std::vector<SimTask> tasks_;
    std::deque<std::size_t> pending_;
    std::deque<std::size_t> waiting_again_;
    std::map<std::size_t, SimWorker> workers_;
    std::map<std::size_t, std::vector<std::uint64_t>> pending_answers_; // sent, not delivered
    std::priority_queue<Event, std::vector<Event>, std::greater<>> events_;
    double now_ = 0;
    std::uint64_t next_sequence_ = 0;
    std::uint64_t next_id_ = 1;
    bool shut_down_ = false;
    std::size_t decisions_ = 0;
    std::size_t workers_started_ = 0;
    std::size_t revocations_ = 0;
};

Simulation::Settings two_workers()
{
    Simulation::Settings settings;
    settings.options.max_workers = 2;
    return settings;
}

/// Every call ended once: done, or failed with a dead worker, or cancelled; none ran twice.
void check_all_ended(const Simulation& sim)
{
    for (std::size_t i = 0; i < sim.tasks().size(); ++i) {
        const auto& task = sim.tasks()[i];
        BOOST_TEST((task.state == SimTask::State::done || task.state == SimTask::State::failed ||
                    task.state == SimTask::State::cancelled),
                   "call " << i << " never ended");
        BOOST_TEST(task.runs <= 1, "call " << i << " ran " << task.runs << " times");
        if (task.state == SimTask::State::done) {
            BOOST_TEST(task.runs == 1, "call " << i << " is done without having run");
        }
    }
}

} // namespace

BOOST_AUTO_TEST_SUITE(scheduler)

BOOST_AUTO_TEST_CASE(two_long_calls_after_a_warm_up_run_on_two_workers_at_once)
{
    // The shape that ran both long calls on one worker (0.60 s) before calls sent ahead could
    // be taken back and unknown callables counted as long.
    Simulation sim(two_workers());
    sim.submit_at(0, 1e-5, /*key=*/1);
    sim.submit_at(0.1, 0.3, /*key=*/2);
    sim.submit_at(0.1, 0.3, /*key=*/2);
    sim.shutdown_at(0.1);
    sim.run();
    check_all_ended(sim);
    BOOST_TEST(sim.workers_started() == 2U);
    BOOST_TEST(sim.elapsed() < 0.1 + 0.3 + 0.02, "finished at " << sim.elapsed());
}

BOOST_AUTO_TEST_CASE(calls_queued_ahead_go_to_a_worker_that_becomes_idle)
{
    // 100 tiny calls teach the scheduler they are short; then 20 calls of 50 ms of the same
    // callable are sent ahead to the one ready worker; the second must take half of them.
    Simulation sim(two_workers());
    for (int i = 0; i < 100; ++i) {
        sim.submit_at(0, 1e-5, 1);
    }
    for (int i = 0; i < 20; ++i) {
        sim.submit_at(0.1, 0.05, 1);
    }
    sim.shutdown_at(0.1);
    sim.run();
    check_all_ended(sim);
    const double ideal = 0.1 + 20 * 0.05 / 2;
    BOOST_TEST(sim.elapsed() < ideal * 1.03 + 0.01,
               "finished at " << sim.elapsed() << ", ideal " << ideal);
}

BOOST_AUTO_TEST_CASE(a_long_call_after_many_tiny_ones_starts_on_the_first_free_worker)
{
    Simulation sim(two_workers());
    for (int i = 0; i < 1000; ++i) {
        sim.submit_at(0, 1e-5, 1);
    }
    sim.submit_at(0, 0.5, 2);
    sim.shutdown_at(0);
    sim.run();
    check_all_ended(sim);
    // 10 ms of tiny calls over two workers, the start-up, then the long one.
    BOOST_TEST(sim.elapsed() < 0.5 + 0.005 + 0.02, "finished at " << sim.elapsed());
}

BOOST_AUTO_TEST_CASE(calls_sent_ahead_behind_a_call_far_longer_than_expected_are_taken_back)
{
    // W3's short-then-long shape, one callable throughout: tiny calls taught the scheduler it
    // takes 10 µs. The first 300 ms call goes to an idle worker, a 2 ms one to the other, and
    // the second 300 ms call is sent ahead behind the first (both workers look equally busy).
    // The 50 ms calls keep the other worker busy and waiting in the parent, so no worker ever
    // idles: only noticing that the first long call runs far longer than expected takes the
    // second back, to start on the other worker within a 50 ms call, not after 300 ms.
    Simulation sim(two_workers());
    for (int i = 0; i < 10; ++i) {
        sim.submit_at(0, 1e-5, 1); // warm-up: both workers started, the callable measured
    }
    const auto first_long = sim.submit_at(0.1, 0.3, 1);
    sim.submit_at(0.1, 0.002, 1);
    const auto second_long = sim.submit_at(0.1, 0.3, 1);
    for (int i = 0; i < 20; ++i) {
        sim.submit_at(0.1, 0.05, 1);
    }
    sim.shutdown_at(0.1);
    sim.run();
    check_all_ended(sim);
    BOOST_TEST(sim.revocations() > 0U);
    BOOST_TEST(sim.tasks()[first_long].runs == 1);
    BOOST_TEST(sim.tasks()[second_long].runs == 1);
    // At the latest after the 50 ms call the other worker runs when the first long call is
    // found overrunning: the younger 50 ms call sent ahead there steps aside for it.
    const double first_start = sim.tasks()[first_long].started_at;
    BOOST_TEST(sim.tasks()[second_long].started_at < first_start + 0.05 + 0.01,
               "the second long call started at " << sim.tasks()[second_long].started_at
                                                  << ", the first at " << first_start);
    const double ideal = 0.1 + (0.002 + 2 * 0.3 + 20 * 0.05) / 2;
    BOOST_TEST(sim.elapsed() < ideal * 1.03 + 0.01,
               "finished at " << sim.elapsed() << ", ideal " << ideal);
}

BOOST_AUTO_TEST_CASE(a_younger_call_sent_ahead_steps_aside_for_an_older_one_taken_back)
{
    // x and y (learned as tiny, in fact 300 ms) go to one worker, z and w (learned as 50 ms) to
    // the other, in the order x, z, y, w. When x is found overrunning (at the next event, a
    // submission), y is taken back; w, younger, steps aside for it, so y starts when z ends
    // instead of after w too.
    Simulation sim(two_workers());
    for (int i = 0; i < 10; ++i) {
        sim.submit_at(0, 1e-5, 1);
    }
    sim.submit_at(0, 0.05, 2);
    sim.submit_at(0, 0.05, 2);
    const auto x = sim.submit_at(0.2, 0.3, 1);
    const auto z = sim.submit_at(0.2, 0.05, 2);
    const auto y = sim.submit_at(0.2, 0.3, 1);
    const auto w = sim.submit_at(0.2, 0.05, 2);
    sim.submit_at(0.21, 1e-5, 3);
    sim.shutdown_at(0.21);
    sim.run();
    check_all_ended(sim);
    const auto& tasks = sim.tasks();
    BOOST_TEST(tasks[x].started_at == 0.2, boost::test_tools::tolerance(1e-3));
    BOOST_TEST(tasks[z].started_at == 0.2, boost::test_tools::tolerance(1e-3));
    BOOST_TEST(tasks[y].started_at < tasks[z].started_at + 0.05 + 0.001,
               "y started at " << tasks[y].started_at << ", z at " << tasks[z].started_at);
    BOOST_TEST(tasks[w].runs == 1);
}

BOOST_AUTO_TEST_CASE(a_call_that_overruns_on_the_only_worker_keeps_its_queue_in_order)
{
    // With one worker there is nowhere else to go: calls taken back from behind an overrunning
    // call are sent again, in their order, and none runs twice or is lost.
    Simulation::Settings settings;
    settings.options.max_workers = 1;
    Simulation sim(settings);
    for (int i = 0; i < 50; ++i) {
        sim.submit_at(0, 1e-5, 1);
    }
    sim.submit_at(0.1, 0.2, 1);
    for (int i = 0; i < 50; ++i) {
        sim.submit_at(0.1, 1e-5, 1);
    }
    sim.shutdown_at(0.1);
    sim.run();
    check_all_ended(sim);
    BOOST_TEST(sim.revocations() > 0U);
    for (std::size_t i = 1; i < sim.tasks().size(); ++i) {
        BOOST_TEST(sim.tasks()[i - 1].started_at <= sim.tasks()[i].started_at,
                   "call " << i << " started before call " << i - 1);
    }
    BOOST_TEST(sim.elapsed() < 0.1 + 0.2 + 0.01, "finished at " << sim.elapsed());
}

BOOST_AUTO_TEST_CASE(the_invariant_holds_after_every_event_of_randomized_runs)
{
    std::mt19937_64 random(20261202);
    std::size_t decisions = 0;
    std::size_t revocations = 0;
    for (int run = 0; run < 1000; ++run) {
        Simulation::Settings settings;
        settings.options.max_workers = 1 + random() % 4;
        settings.options.max_tasks_per_child = random() % 4 == 0 ? 1 + random() % 20 : 0;
        settings.startup = std::uniform_real_distribution<double>(0.0005, 0.02)(random);
        settings.answer_delay = std::uniform_real_distribution<double>(1e-6, 5e-4)(random);
        Simulation sim(settings);
        const int calls = 20 + static_cast<int>(random() % 300);
        // Callables of different habits: tiny, short, heavy-tailed (median 2 ms), long.
        std::lognormal_distribution<double> heavy(std::log(0.002), 1.2);
        double time = 0;
        double work = 0;
        double longest = 0;
        std::vector<std::size_t> submitted;
        for (int i = 0; i < calls; ++i) {
            const auto key = static_cast<CallKey>(1 + random() % 4);
            double duration = 0;
            switch (key) {
            case 1:
                duration = 1e-5;
                break;
            case 2:
                duration = 0.001;
                break;
            case 3:
                duration = std::min(heavy(random), 0.2);
                break;
            default:
                duration = 0.05 + 0.1 * static_cast<double>(random() % 3);
                break;
            }
            work += duration;
            longest = std::max(longest, duration);
            if (random() % 5 == 0) {
                time += std::uniform_real_distribution<double>(0, 0.02)(random);
            }
            submitted.push_back(sim.submit_at(time, duration, key));
        }
        const bool faults = random() % 2 == 0;
        if (faults) {
            for (int i = 0; i < 3; ++i) {
                const double when = std::uniform_real_distribution<double>(0, time + 0.1)(random);
                switch (random() % 3) {
                case 0:
                    sim.crash_one_at(when, random());
                    break;
                case 1:
                    sim.kill_at(when, submitted[random() % submitted.size()]);
                    break;
                default:
                    sim.cancel_at(when, submitted[random() % submitted.size()]);
                    break;
                }
            }
        }
        sim.shutdown_at(time);
        sim.run();
        check_all_ended(sim);
        if (!faults && settings.options.max_tasks_per_child == 0) {
            // A scheduler that never lets a worker idle while work waits finishes within
            // Graham's bound for list scheduling (work / workers + the longest call), plus
            // start-ups and the channel.
            const auto workers = static_cast<double>(settings.options.max_workers);
            const double bound = time + work / workers + longest + 2 * settings.startup +
                                 static_cast<double>(calls) * settings.answer_delay;
            BOOST_TEST(sim.elapsed() <= bound,
                       "run " << run << " finished at " << sim.elapsed() << ", bound " << bound);
        }
        decisions += sim.decisions();
        revocations += sim.revocations();
    }
    BOOST_TEST_MESSAGE(decisions << " scheduling decisions checked, " << revocations
                                 << " calls taken back");
    BOOST_TEST(revocations > 0U, "no run exercised taking calls back");
}

BOOST_AUTO_TEST_CASE(a_worker_that_answers_another_call_than_its_oldest_is_refused)
{
    Scheduler scheduler({.max_workers = 1});
    const auto worker = scheduler.add_worker();
    scheduler.worker_ready(worker);
    BOOST_CHECK_THROW(scheduler.answered(worker, 42, 0.0), futura::detail::ProtocolError);
}

BOOST_AUTO_TEST_CASE(estimates_are_per_callable_and_per_element)
{
    futura::detail::CallEstimates estimates;
    BOOST_TEST(!estimates.per_element(7).has_value());
    estimates.record(7, 10, 1.0);
    estimates.record(8, 1, 0.001);
    BOOST_TEST(*estimates.per_element(7) == 0.1, boost::test_tools::tolerance(1e-9));
    BOOST_TEST(*estimates.per_element(8) == 0.001, boost::test_tools::tolerance(1e-9));
}

BOOST_AUTO_TEST_CASE(a_busy_worker_is_always_sent_as_many_long_calls_ahead_as_always_ahead_says)
{
    // Calls of 10 ms each (far over the 1 ms send-ahead budget) wait in the parent: a busy
    // worker is sent `always_ahead` of them behind its running one, whatever their length (one
    // for the process pool; the MPI pool asks for more).
    struct Host final : SchedulerHost
    {
        std::size_t left = 10;
        std::uint64_t last_id = 0;
        [[nodiscard]] Clock::time_point now() const override { return {}; }
        [[nodiscard]] std::size_t waiting() const override { return left; }
        std::optional<CallInfo> peek_waiting() override
        {
            return left == 0 ? std::nullopt : std::optional(CallInfo{1, 1});
        }
        std::optional<SentCall> send_next(std::size_t /*worker*/) override
        {
            --left;
            return SentCall{nullptr, ++last_id, {1, 1}, false};
        }
        bool try_revoke(std::size_t /*worker*/, const SentCall& /*call*/) override { return false; }
        void wait_again(std::vector<SentCall> /*calls*/) override {}
        bool start_worker() override { return false; }
    };
    const auto sent_to_a_busy_worker = [](std::size_t always_ahead) {
        Scheduler scheduler({.max_workers = 1, .always_ahead = always_ahead});
        const auto worker = scheduler.add_worker();
        scheduler.worker_ready(worker);
        Host host;
        host.left = 1; // the first call teaches the estimate
        scheduler.dispatch(host);
        scheduler.answered(worker, host.last_id, 0.01);
        host.left = 10;
        scheduler.dispatch(host);
        return scheduler.unanswered(worker).size();
    };
    BOOST_TEST(sent_to_a_busy_worker(1) == 2U); // the running call and one ahead
    BOOST_TEST(sent_to_a_busy_worker(3) == 4U);
    BOOST_TEST(sent_to_a_busy_worker(0) == 2U); // at least one always goes ahead
}

BOOST_AUTO_TEST_CASE(automatic_chunks_follow_the_callable_s_estimate)
{
    Scheduler scheduler({.max_workers = 2});
    // Nothing known: four chunks per worker of a known total, single calls otherwise.
    BOOST_TEST(scheduler.chunk_size(1, 800) == 100U);
    BOOST_TEST(scheduler.chunk_size(1, std::nullopt) == 1U);
    // A callable measured at 10 ms per element: 50 ms chunks.
    const auto worker = scheduler.add_worker();
    scheduler.worker_ready(worker);
    struct Host final : SchedulerHost
    {
        bool sent = false;
        [[nodiscard]] Clock::time_point now() const override { return {}; }
        [[nodiscard]] std::size_t waiting() const override { return sent ? 0 : 1; }
        std::optional<CallInfo> peek_waiting() override
        {
            return sent ? std::nullopt : std::optional(CallInfo{1, 4});
        }
        std::optional<SentCall> send_next(std::size_t /*worker*/) override
        {
            sent = true;
            return SentCall{nullptr, 9, {1, 4}, false};
        }
        bool try_revoke(std::size_t /*worker*/, const SentCall& /*call*/) override { return false; }
        void wait_again(std::vector<SentCall> /*calls*/) override {}
        bool start_worker() override { return false; }
    } host;
    scheduler.dispatch(host);
    scheduler.answered(worker, 9, 0.04);
    BOOST_TEST(scheduler.chunk_size(1, 800) == 5U);
    BOOST_TEST(scheduler.chunk_size(1, std::nullopt) == 5U);
    BOOST_TEST(scheduler.chunk_size(2, 800) == 100U); // another callable: still unknown
}

BOOST_AUTO_TEST_SUITE_END()
