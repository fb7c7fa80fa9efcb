// futura::MpiPoolExecutor and futura::MpiCommExecutor: where the workers come from; the rest is
// the root executor's.
#include <futura/detail/mpi_root_executor.hpp>
#include <futura/detail/mpi_runtime.hpp>
#include <futura/detail/wire.hpp>
#include <futura/detail/worker.hpp>
#include <futura/errors.hpp>
#include <futura/mpi.hpp>

#include <boost/mpi/exception.hpp>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace futura {

namespace {

/// How many workers to spawn when the options do not say.
int default_spawn_count()
{
    if (const char* text = std::getenv("FUTURA_MPI_MAX_WORKERS")) {
        const int n = std::atoi(text);
        if (n <= 0) {
            throw std::invalid_argument(std::string("futura::MpiPoolExecutor: "
                                                    "FUTURA_MPI_MAX_WORKERS must be a positive "
                                                    "number (got \"") +
                                        text + "\")");
        }
        return n;
    }
    int* universe = nullptr;
    int found = 0;
    MPI_Comm_get_attr(MPI_COMM_WORLD, MPI_UNIVERSE_SIZE, &universe, &found);
    int world = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    if (found != 0 && universe != nullptr && *universe > world) {
        return *universe - world;
    }
    return 1;
}

/// The initializer's call with `args`, encoded as a task's call for every worker (empty: no
/// initializer). @throws std::invalid_argument naming `executor` if the arguments do not fit
/// its parameters or cannot leave this node.
std::vector<char> encode_initializer(const ProcessInitializer& initializer, const InitArgs& args,
                                     const char* executor)
{
    initializer.check(args, executor);
    std::vector<char> call;
    if (!initializer) {
        return call;
    }
    detail::WireWriter out(call);
    try {
        // No attachments: a value that names this node's memory or files cannot be written.
        initializer.encode(out, args);
    } catch (const ProtocolError& e) {
        throw std::invalid_argument(
            std::string(executor) +
            ": initargs refer to memory or files of this node (SharedArray, MappedArray, "
            "SharedValue, a shared container or a mutable std::span), which other hosts cannot "
            "reach; pass the data by value (a std::vector) instead (" +
            e.what() + ")");
    }
    return call;
}

detail::mpi::RootSetup spawn_workers(std::optional<int> count, std::vector<char> initializer)
{
    if (!detail::main_is_wrapped()) {
        throw std::runtime_error(
            "futura::MpiPoolExecutor: spawned workers need this program's main to be wrapped "
            "(link it with the CMake target futura::mpi or the b2 target, which add "
            "-Wl,--wrap=main), and the executor to be made in main, not at namespace scope");
    }
    const std::lock_guard guard(detail::mpi::lock());
    const int n = count.value_or(default_spawn_count());
    const auto path = std::filesystem::read_symlink("/proc/self/exe").string();
    MPI_Comm self = MPI_COMM_NULL;
    BOOST_MPI_CHECK_RESULT(MPI_Comm_dup, (MPI_COMM_SELF, &self));
    detail::mpi::errors_return(self);
    std::string argument = detail::mpi::spawned_worker_argument;
    char* argv[] = {argument.data(), nullptr};
    std::vector<int> errors(static_cast<std::size_t>(n), MPI_SUCCESS);
    MPI_Comm intercomm = MPI_COMM_NULL;
    const int spawned =
        MPI_Comm_spawn(path.c_str(), argv, n, MPI_INFO_NULL, 0, self, &intercomm, errors.data());
    MPI_Comm_free(&self);
    if (spawned != MPI_SUCCESS) {
        throw boost::mpi::exception("MPI_Comm_spawn", spawned);
    }
    detail::mpi::errors_return(intercomm);
    MPI_Comm merged = MPI_COMM_NULL;
    BOOST_MPI_CHECK_RESULT(MPI_Intercomm_merge, (intercomm, 0, &merged));
    detail::mpi::errors_return(merged);
    detail::mpi::RootSetup setup;
    setup.comm = merged;
    setup.intercomm = intercomm;
    setup.root = 0;
    for (int rank = 1; rank <= n; ++rank) {
        setup.worker_ranks.push_back(rank);
    }
    setup.ownership = detail::mpi::Ownership::spawned;
    setup.initializer_call = std::move(initializer);
    return setup;
}

detail::mpi::RootSetup claim_pre_started(std::optional<int> count, std::vector<char> initializer)
{
    const auto comm = detail::mpi::claim_pre_started();
    if (!comm) {
        throw InvalidStateError(
            detail::mpi::pre_started_workers() > 0
                ? "futura::MpiPoolExecutor: the pre-started worker ranks serve another "
                  "MpiPoolExecutor; shut that one down first"
                : "futura::MpiPoolExecutor: there are no pre-started worker ranks (start the "
                  "program with mpiexec -n N, N > 1, and without futura::MpiSpmdProgram)");
    }
    const int available = detail::mpi::pre_started_workers();
    const int n = count ? std::min(*count, available) : available;
    detail::mpi::RootSetup setup;
    setup.comm = *comm;
    setup.root = 0;
    for (int rank = 1; rank <= n; ++rank) {
        setup.worker_ranks.push_back(rank);
    }
    setup.ownership = detail::mpi::Ownership::pre_started;
    setup.initializer_call = std::move(initializer);
    return setup;
}

} // namespace

MpiPoolExecutor::MpiPoolExecutor(MpiPoolOptions options)
{
    std::optional<int> count;
    if (options.max_workers) {
        count =
            static_cast<int>(detail::checked_max_workers(options.max_workers, "MpiPoolExecutor"));
    }
    auto initializer =
        encode_initializer(options.initializer, options.initargs, "futura::MpiPoolExecutor");
    detail::mpi::ensure_initialized();
    bool pre_started = options.workers == MpiWorkers::pre_started;
    if (options.workers == MpiWorkers::automatic) {
        pre_started = detail::mpi::pre_started_workers() > 0;
    }
    auto setup = pre_started ? claim_pre_started(count, std::move(initializer))
                             : spawn_workers(count, std::move(initializer));
    setup.executor_name = "MpiPoolExecutor";
    impl_ = std::make_unique<detail::mpi::RootExecutor>(std::move(setup));
    pre_started_ = pre_started;
}

MpiPoolExecutor::~MpiPoolExecutor() = default;

bool MpiPoolExecutor::pre_started() const noexcept { return pre_started_; }

void MpiPoolExecutor::schedule(detail::TaskPtr task) { impl_->schedule(std::move(task)); }

void MpiPoolExecutor::do_shutdown(const ShutdownOptions& options) { impl_->shutdown(options); }

std::size_t MpiPoolExecutor::do_max_workers() const noexcept { return impl_->max_workers(); }

std::size_t MpiPoolExecutor::do_share_threshold() const noexcept { return 0; }

ExecutorStats MpiPoolExecutor::do_stats() const { return impl_->stats(); }

std::size_t MpiPoolExecutor::do_auto_chunksize(std::optional<std::size_t> total,
                                               detail::CallKey key) const
{
    return impl_->auto_chunksize(total, key);
}

// ----- MpiCommExecutor ---------------------------------------------------------------------

MpiCommExecutor::MpiCommExecutor(MPI_Comm comm, int root, MpiCommOptions options)
{
    detail::mpi::ensure_initialized();
    int rank = 0;
    int size = 0;
    {
        const std::lock_guard guard(detail::mpi::lock());
        BOOST_MPI_CHECK_RESULT(MPI_Comm_size, (comm, &size));
        if (root < 0 || root >= size) {
            throw std::invalid_argument("futura::MpiCommExecutor: root " + std::to_string(root) +
                                        " is not a rank of the communicator (its size is " +
                                        std::to_string(size) + ")");
        }
        BOOST_MPI_CHECK_RESULT(MPI_Comm_dup, (comm, &comm_));
        detail::mpi::errors_return(comm_);
        BOOST_MPI_CHECK_RESULT(MPI_Comm_rank, (comm_, &rank));
    }
    if (rank != root) {
        detail::mpi::serve(comm_, root, /*until_exit=*/false);
        const std::lock_guard guard(detail::mpi::lock());
        MPI_Comm_free(&comm_);
        return;
    }
    detail::mpi::RootSetup setup;
    // Checked on the root only: the other ranks serve already, and are told of a failure by
    // their executor's goodbye.
    setup.initializer_call =
        encode_initializer(options.initializer, options.initargs, "futura::MpiCommExecutor");
    setup.executor_name = "MpiCommExecutor";
    setup.comm = comm_;
    setup.root = root;
    for (int r = 0; r < size; ++r) {
        if (r != root) {
            setup.worker_ranks.push_back(r);
        }
    }
    setup.ownership = detail::mpi::Ownership::collective;
    impl_ = std::make_unique<detail::mpi::RootExecutor>(std::move(setup));
}

MpiCommExecutor::~MpiCommExecutor()
{
    if (impl_) {
        impl_.reset(); // shuts down and says goodbye
        const std::lock_guard guard(detail::mpi::lock());
        MPI_Comm_free(&comm_);
    }
}

void MpiCommExecutor::schedule(detail::TaskPtr task)
{
    if (!impl_) {
        throw ShutdownError("futura::MpiCommExecutor: this rank is not the root; its executor "
                            "served the root's calls and is done");
    }
    impl_->schedule(std::move(task));
}

void MpiCommExecutor::do_shutdown(const ShutdownOptions& options)
{
    if (impl_) {
        impl_->shutdown(options);
    }
}

std::size_t MpiCommExecutor::do_max_workers() const noexcept
{
    return impl_ ? impl_->max_workers() : 0;
}

ExecutorStats MpiCommExecutor::do_stats() const { return impl_ ? impl_->stats() : ExecutorStats{}; }

std::size_t MpiCommExecutor::do_auto_chunksize(std::optional<std::size_t> total,
                                               detail::CallKey key) const
{
    return impl_ ? impl_->auto_chunksize(total, key) : 1;
}

MpiSpmdProgram::MpiSpmdProgram() noexcept { detail::mpi::declare_spmd(); }

} // namespace futura
