// The process pool's scheduling decisions (see scheduler.hpp). Everything here runs on one
// thread and touches no process: the tests drive it with simulated workers.
#include <futura/detail/scheduler.hpp>
#include <futura/detail/wire.hpp>

#include <algorithm>
#include <cmath>
#include <limits>

namespace futura::detail {

namespace {

// Automatic map chunks aim at about this much work each, and at most this many inputs.
constexpr auto chunk_target = std::chrono::milliseconds(50);
constexpr std::size_t max_auto_chunk = 100000;
// Weight of a new measurement in a callable's moving average.
constexpr double new_weight = 0.25;

} // namespace

// ----- CallEstimates -------------------------------------------------------------------------

std::optional<double> CallEstimates::per_element(CallKey key) const
{
    const std::lock_guard lock(mutex_);
    const auto found = seconds_per_element_.find(key);
    if (found == seconds_per_element_.end()) {
        return std::nullopt;
    }
    return found->second;
}

bool CallEstimates::record(CallKey key, std::size_t elements, double seconds)
{
    const double per_element =
        std::max(seconds, 0.0) / static_cast<double>(std::max<std::size_t>(elements, 1));
    const std::lock_guard lock(mutex_);
    const auto [place, added] = seconds_per_element_.try_emplace(key, per_element);
    if (!added) {
        const double before = place->second;
        place->second = (1 - new_weight) * before + new_weight * per_element;
        return place->second >= 2 * before;
    }
    if (seconds_per_element_.size() > max_keys) {
        // Forget the others rather than this one: what runs now matters most.
        const double kept = place->second;
        seconds_per_element_.clear();
        seconds_per_element_.emplace(key, kept);
    }
    return false; // calls of a callable never measured are not sent ahead
}

// ----- Scheduler -----------------------------------------------------------------------------

Scheduler::Scheduler(SchedulerOptions options) : options_(options)
{
    options_.max_workers = std::max<std::size_t>(options_.max_workers, 1);
    options_.max_unanswered = std::max<std::size_t>(options_.max_unanswered, 1);
    options_.always_ahead = std::max<std::size_t>(options_.always_ahead, 1);
}

std::size_t Scheduler::add_worker()
{
    workers_.push_back(Worker{
        .number = next_number_, .calls = {}, .front_since = {}, .front_overdue_noted = false});
    return next_number_++;
}

Scheduler::Worker* Scheduler::worker(std::size_t number)
{
    const auto found = std::find_if(workers_.begin(), workers_.end(),
                                    [&](const Worker& w) { return w.number == number; });
    return found == workers_.end() ? nullptr : &*found;
}

const Scheduler::Worker* Scheduler::worker(std::size_t number) const
{
    return const_cast<Scheduler*>(this)->worker(number); // NOLINT: the same lookup
}

void Scheduler::worker_ready(std::size_t number)
{
    if (auto* w = worker(number)) {
        w->ready = true;
    }
}

void Scheduler::stop_sending(std::size_t number)
{
    if (auto* w = worker(number)) {
        w->sending = false;
    }
}

std::deque<SentCall> Scheduler::remove_worker(std::size_t number)
{
    std::deque<SentCall> calls;
    const auto found = std::find_if(workers_.begin(), workers_.end(),
                                    [&](const Worker& w) { return w.number == number; });
    if (found != workers_.end()) {
        calls.swap(found->calls);
        workers_.erase(found);
    }
    return calls;
}

SentCall Scheduler::answered(std::size_t number, std::uint64_t id, double seconds)
{
    auto* w = worker(number);
    if (w == nullptr || w->calls.empty() || w->calls.front().id != id) {
        throw ProtocolError("futura: a worker answered a task it was not running");
    }
    SentCall call = w->calls.front();
    w->calls.pop_front();
    new_front(*w, std::nullopt); // the next one starts about now; `dispatch` notes when
    estimates_grew_ |= estimates_.record(call.info.key, call.info.elements, seconds);
    return call;
}

std::optional<Scheduler::Found> Scheduler::find(const void* task) const
{
    for (const auto& w : workers_) {
        for (std::size_t i = 0; i < w.calls.size(); ++i) {
            if (w.calls[i].task == task) {
                return Found{w.number, i, w.calls[i]};
            }
        }
    }
    return std::nullopt;
}

void Scheduler::forget(std::size_t number, std::uint64_t id)
{
    if (auto* w = worker(number)) {
        const auto found = std::find_if(w->calls.begin(), w->calls.end(),
                                        [&](const SentCall& c) { return c.id == id; });
        if (found != w->calls.end()) {
            if (found == w->calls.begin()) {
                new_front(*w, std::nullopt);
            }
            w->calls.erase(found);
            --w->sent; // it never runs there: it does not count towards retiring
        }
    }
}

void Scheduler::mark_started(std::size_t number, std::uint64_t id)
{
    auto* w = worker(number);
    if (w == nullptr) {
        return;
    }
    // A worker runs its calls in order: those before a started one have started too (and most
    // likely finished, their answers on the way).
    for (auto& call : w->calls) {
        call.started = true;
        if (call.id == id) {
            break;
        }
    }
}

bool Scheduler::takes_calls(const Worker& w) const noexcept
{
    return w.ready && w.sending &&
           (options_.max_tasks_per_child == 0 || w.sent < options_.max_tasks_per_child) &&
           w.calls.size() < options_.max_unanswered;
}

void Scheduler::new_front(Worker& w, std::optional<SchedulerHost::Clock::time_point> since)
{
    w.front_since = since;
    w.front_overdue_noted = false;
}

bool Scheduler::overdue(const Worker& w) const
{
    if (w.calls.empty() || !w.front_since) {
        return false;
    }
    // A call never measured counts as long for placing it, but as nothing here: whatever was
    // sent ahead behind it was sent when it looked short, which it no longer does.
    const double expected = std::isfinite(w.calls.front().seconds) ? w.calls.front().seconds : 0;
    const std::chrono::duration<double> limit = std::max(
        options_.overdue_floor, std::chrono::duration<double>(options_.overdue_factor * expected));
    return now_ - *w.front_since > limit;
}

std::optional<double> Scheduler::estimate(const CallInfo& info) const
{
    const auto per_element = estimates_.per_element(info.key);
    if (!per_element) {
        return std::nullopt;
    }
    return *per_element * static_cast<double>(std::max<std::size_t>(info.elements, 1));
}

Scheduler::Worker* Scheduler::place(const CallInfo& info)
{
    // An idle worker first, always: nothing beats starting at once.
    for (auto& w : workers_) {
        if (takes_calls(w) && w.calls.empty()) {
            return &w;
        }
    }
    // A call never measured counts as long: it waits for an idle worker.
    const auto seconds = estimate(info);
    if (!seconds) {
        return nullptr;
    }
    const double budget = options_.send_ahead.count();
    Worker* best = nullptr;
    double best_queued = std::numeric_limits<double>::infinity();
    for (auto& w : workers_) {
        if (!takes_calls(w) || overdue(w)) {
            continue;
        }
        // The work queued behind the call it runs now (the front); unknown counts as endless.
        double queued = 0;
        for (std::size_t i = 1; i < w.calls.size(); ++i) {
            queued += w.calls[i].seconds;
        }
        // One call (`always_ahead`) may always wait behind the running one, so that a worker
        // never waits for the parent between calls; more only while they are short. A call
        // queued on a worker that stays busy is taken back for the first idle one (rebalance),
        // so this costs no parallelism.
        const bool fits = w.calls.size() <= options_.always_ahead || queued + *seconds <= budget;
        if (fits && queued < best_queued) {
            best = &w;
            best_queued = queued;
        }
    }
    return best;
}

bool Scheduler::rebalance(SchedulerHost& host)
{
    if (host.waiting() > 0) {
        return false; // idle workers get the parent's calls first
    }
    const bool someone_idle = std::any_of(workers_.begin(), workers_.end(), [&](const Worker& w) {
        return takes_calls(w) && w.calls.empty();
    });
    if (!someone_idle) {
        return false;
    }
    // The worker with the most calls waiting behind its running one gives back the later half;
    // if it started them meanwhile (its answers are on the way), the next busiest.
    for (;;) {
        Worker* busiest = nullptr;
        std::size_t most = 0;
        for (auto& w : workers_) {
            std::size_t waiting_here = 0;
            for (std::size_t i = 1; i < w.calls.size(); ++i) {
                waiting_here += w.calls[i].started ? 0U : 1U;
            }
            if (waiting_here > most) {
                busiest = &w;
                most = waiting_here;
            }
        }
        if (busiest == nullptr) {
            return false;
        }
        std::vector<SentCall> taken;
        take_back_from(host, *busiest, busiest->calls.size() - (most + 1) / 2, taken);
        if (!taken.empty()) {
            wait_again(host, std::move(taken));
            return true;
        }
    }
}

void Scheduler::take_back_from(SchedulerHost& host, Worker& w, std::size_t keep,
                               std::vector<SentCall>& taken)
{
    keep = std::max<std::size_t>(keep, 1); // the front runs now, or is about to
    // From the back: the calls furthest from starting.
    while (w.calls.size() > keep && !w.calls.back().started) {
        const SentCall call = w.calls.back();
        if (!host.try_revoke(w.number, call)) {
            mark_started(w.number, call.id);
            return; // it started, so every call before it has too
        }
        w.calls.pop_back();
        --w.sent;
        taken.push_back(call);
    }
}

void Scheduler::wait_again(SchedulerHost& host, std::vector<SentCall> taken)
{
    std::sort(taken.begin(), taken.end(),
              [](const SentCall& a, const SentCall& b) { return a.order < b.order; });
    for (const auto& call : taken) {
        order_taken_back_[call.task] = call.order;
    }
    host.wait_again(std::move(taken));
}

void Scheduler::take_back_misjudged(SchedulerHost& host)
{
    std::vector<SentCall> taken;
    const double budget = options_.send_ahead.count();
    for (auto& w : workers_) {
        if (!overdue(w)) {
            continue;
        }
        if (!w.front_overdue_noted) {
            // What it runs is longer than its callable was thought to take: so are, likely,
            // the other calls of that callable. (Noted once, as if it had ended now.)
            w.front_overdue_noted = true;
            const auto& front = w.calls.front();
            const std::chrono::duration<double> ran = now_ - *w.front_since;
            estimates_grew_ |= estimates_.record(front.info.key, front.info.elements, ran.count());
        }
        take_back_from(host, w, 1, taken);
    }
    if (estimates_grew_) {
        // Keep of the calls sent ahead what fits by today's estimates, as `place` would.
        for (auto& w : workers_) {
            std::size_t keep = std::min<std::size_t>(w.calls.size(), 1 + options_.always_ahead);
            double queued = 0;
            for (std::size_t i = 1; i < keep; ++i) {
                queued += estimate(w.calls[i].info).value_or(0);
            }
            while (keep < w.calls.size()) {
                queued += estimate(w.calls[keep].info).value_or(0);
                if (queued > budget) {
                    break;
                }
                ++keep;
            }
            take_back_from(host, w, keep, taken);
        }
        estimates_grew_ = false;
    }
    if (taken.empty()) {
        return;
    }
    // Calls sent after the oldest one taken back, and queued on other workers, step aside for
    // it: the pool keeps the order of submission, and the older call starts first.
    const auto oldest =
        std::min_element(taken.begin(), taken.end(), [](const auto& a, const auto& b) {
            return a.order < b.order;
        })->order;
    for (auto& w : workers_) {
        std::size_t keep = 1;
        while (keep < w.calls.size() && w.calls[keep].order < oldest) {
            ++keep;
        }
        take_back_from(host, w, keep, taken);
    }
    wait_again(host, std::move(taken));
}

void Scheduler::dispatch(SchedulerHost& host)
{
    now_ = host.now();
    for (auto& w : workers_) {
        if (!w.calls.empty() && !w.front_since) {
            w.front_since = now_;
        }
    }
    if (!order_taken_back_.empty() && host.waiting() == 0) {
        order_taken_back_.clear(); // no call taken back waits
    }
    take_back_misjudged(host);
    for (;;) {
        while (const auto info = host.peek_waiting()) {
            Worker* target = place(*info);
            if (target == nullptr) {
                break;
            }
            const std::size_t number = target->number;
            auto call = host.send_next(number);
            if (!call) {
                continue; // it failed to encode (its future has the error), or none was left
            }
            if (const auto found = order_taken_back_.find(call->task);
                found != order_taken_back_.end()) {
                call->order = found->second;
                order_taken_back_.erase(found);
            } else {
                call->order = next_order_++;
            }
            if (auto* w = worker(number)) {
                const auto seconds = estimate(call->info);
                call->seconds = seconds ? *seconds : std::numeric_limits<double>::infinity();
                if (w->calls.empty()) {
                    new_front(*w, now_);
                }
                w->calls.push_back(*call);
                ++w->sent;
            }
        }
        if (!rebalance(host)) {
            break;
        }
    }
    start_workers(host);
}

void Scheduler::start_workers(SchedulerHost& host)
{
    // Calls queued ahead on busy workers wait as much as those in the parent: each is a reason
    // for another worker, as each submission is in Python's pool.
    const std::size_t waiting = host.waiting() + queued_ahead();
    std::size_t starting = 0;
    std::size_t usable = 0;
    for (const auto& w : workers_) {
        starting += w.ready ? 0U : 1U;
        usable += w.sending ? 1U : 0U;
    }
    while (waiting > starting && usable < options_.max_workers) {
        if (!host.start_worker()) {
            return;
        }
        ++starting;
        ++usable;
    }
}

std::size_t Scheduler::queued_ahead() const noexcept
{
    std::size_t n = 0;
    for (const auto& w : workers_) {
        for (std::size_t i = 1; i < w.calls.size(); ++i) {
            n += w.calls[i].started ? 0U : 1U;
        }
    }
    return n;
}

bool Scheduler::all_answered() const noexcept
{
    return std::all_of(workers_.begin(), workers_.end(),
                       [](const Worker& w) { return w.calls.empty(); });
}

bool Scheduler::no_idle_worker_while_work_waits(std::size_t waiting) const
{
    const bool someone_idle = std::any_of(workers_.begin(), workers_.end(), [&](const Worker& w) {
        return takes_calls(w) && w.calls.empty();
    });
    return !someone_idle || (waiting == 0 && queued_ahead() == 0);
}

const std::deque<SentCall>& Scheduler::unanswered(std::size_t number) const
{
    static const std::deque<SentCall> none;
    const auto* w = worker(number);
    return w != nullptr ? w->calls : none;
}

std::size_t Scheduler::chunk_size(CallKey key, std::optional<std::size_t> total) const
{
    const auto per_element = estimates_.per_element(key);
    std::size_t chunk = max_auto_chunk;
    if (total) {
        // As multiprocessing.Pool.map does: about four chunks per worker.
        const auto parts = 4 * options_.max_workers;
        chunk = (*total + parts - 1) / parts;
    } else if (!per_element) {
        chunk = 1; // nothing measured, nothing known: one at a time until we learn
    }
    if (per_element && *per_element > 0) {
        const double fit = std::chrono::duration<double>(chunk_target).count() / *per_element;
        chunk = std::min(chunk, fit >= static_cast<double>(max_auto_chunk)
                                    ? max_auto_chunk
                                    : static_cast<std::size_t>(fit));
    }
    return std::clamp<std::size_t>(chunk, 1, max_auto_chunk);
}

} // namespace futura::detail
