// MPI's life in a futura program: who initialises and finalises it, which ranks become workers
// before main, and the identity of the running build.
#include <futura/detail/mpi_message.hpp>
#include <futura/detail/mpi_runtime.hpp>
#include <futura/detail/worker.hpp>

#include <boost/mpi/exception.hpp>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <elf.h>
#include <filesystem>
#include <link.h>
#include <stdexcept>
#include <string_view>

namespace futura::detail::mpi {

namespace {

struct State
{
    std::mutex mutex; // guards the fields below (not MPI: that is lock())
    bool initialized_here = false;
    bool at_exit_registered = false;
    int provided = MPI_THREAD_SINGLE;
    // Rank 0 of a job whose other ranks serve as workers: set before main, never changed after.
    bool pre_started_root = false;
    int world_size = 1;
    MPI_Comm pre_started = MPI_COMM_NULL;
    bool pre_started_claimed = false;
};

State& state()
{
    static State s; // constructed before any executor: destroyed after them
    return s;
}

std::atomic<bool> spmd{false};

int environment_int(const char* name, int otherwise)
{
    const char* text = std::getenv(name);
    return text != nullptr && *text != '\0' ? std::atoi(text) : otherwise;
}

/// This rank and the job's size, from the launcher's environment (before MPI_Init):
/// Open MPI, then PMIx and MPICH's Hydra.
std::pair<int, int> launcher_rank_and_size()
{
    int size = environment_int("OMPI_COMM_WORLD_SIZE", -1);
    int rank = environment_int("OMPI_COMM_WORLD_RANK", -1);
    if (size < 0) {
        size = environment_int("PMI_SIZE", 1);
        rank = environment_int("PMIX_RANK", environment_int("PMI_RANK", 0));
    }
    return {rank, size};
}

void initialize_locked(State& s)
{
    int initialized = 0;
    MPI_Initialized(&initialized);
    if (initialized == 0) {
        BOOST_MPI_CHECK_RESULT(MPI_Init_thread,
                               (nullptr, nullptr, MPI_THREAD_MULTIPLE, &s.provided));
        s.initialized_here = true;
    } else {
        int finalized = 0;
        MPI_Finalized(&finalized);
        if (finalized != 0) {
            throw std::runtime_error("futura: MPI was finalized already; an MPI executor needs "
                                     "it until the executor is gone");
        }
        MPI_Query_thread(&s.provided);
    }
    if (s.provided < MPI_THREAD_SERIALIZED) {
        throw std::runtime_error(
            "futura: MPI provides only thread level " + std::to_string(s.provided) +
            "; futura's MPI executors need MPI_THREAD_SERIALIZED at least (initialise MPI with "
            "MPI_Init_thread and MPI_THREAD_MULTIPLE, or let futura initialise it)");
    }
}

/// Leaves the pre-started workers and finalises MPI if futura initialised it: at exit, once
/// every executor is gone.
void at_exit()
{
    State& s = state();
    const std::lock_guard guard(lock());
    try {
        if (s.pre_started_root) {
            initialize_locked(s); // the workers wait in MPI_Init until rank 0 joins them
            if (s.pre_started == MPI_COMM_NULL) {
                BOOST_MPI_CHECK_RESULT(MPI_Comm_dup, (MPI_COMM_WORLD, &s.pre_started));
            }
            for (int rank = 1; rank < s.world_size; ++rank) {
                auto message = begin_message();
                seal(message);
                send_blocking(s.pre_started, rank, Tag::exit, std::move(message));
            }
            MPI_Comm_free(&s.pre_started);
        }
    } catch (const std::exception& e) {
        std::fprintf(stderr, "futura: could not dismiss the MPI worker ranks: %s\n", e.what());
    }
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (s.initialized_here && finalized == 0) {
        MPI_Finalize();
    }
}

void register_at_exit(State& s)
{
    if (!s.at_exit_registered) {
        s.at_exit_registered = true;
        std::atexit(at_exit);
    }
}

[[noreturn]] void leave(int status)
{
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized == 0) {
        MPI_Finalize();
    }
    std::fflush(nullptr);
    std::exit(status); // a worker's globals are its own: destroy them as a program does
}

[[noreturn]] void run_spawned_worker()
{
    try {
        ensure_initialized();
        MPI_Comm parent = MPI_COMM_NULL;
        BOOST_MPI_CHECK_RESULT(MPI_Comm_get_parent, (&parent));
        if (parent == MPI_COMM_NULL) {
            std::fprintf(stderr, "futura: started as a spawned MPI worker, but no parent spawned "
                                 "it\n");
            std::_Exit(4);
        }
        errors_return(parent);
        MPI_Comm merged = MPI_COMM_NULL;
        BOOST_MPI_CHECK_RESULT(MPI_Intercomm_merge, (parent, 1, &merged));
        errors_return(merged);
        serve(merged, 0, /*until_exit=*/true);
        MPI_Comm_free(&merged);
        MPI_Comm_disconnect(&parent);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "futura: spawned MPI worker: %s\n", e.what());
        std::_Exit(4);
    }
    leave(0);
}

[[noreturn]] void run_pre_started_worker()
{
    try {
        ensure_initialized();
        MPI_Comm comm = MPI_COMM_NULL;
        BOOST_MPI_CHECK_RESULT(MPI_Comm_dup, (MPI_COMM_WORLD, &comm));
        errors_return(comm);
        serve(comm, 0, /*until_exit=*/true);
        MPI_Comm_free(&comm);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "futura: pre-started MPI worker: %s\n", e.what());
        std::_Exit(4);
    }
    leave(0);
}

/// Runs in the wrapped main, before main: sends worker ranks to their loop.
void before_main(int argc, char** argv)
{
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], spawned_worker_argument) == 0) {
            run_spawned_worker();
        }
    }
    const char* spmd_variable = std::getenv("FUTURA_MPI_SPMD");
    if (spmd.load(std::memory_order_relaxed) ||
        (spmd_variable != nullptr && std::strcmp(spmd_variable, "1") == 0)) {
        return;
    }
    const auto [rank, size] = launcher_rank_and_size();
    if (size <= 1) {
        return;
    }
    if (rank != 0) {
        run_pre_started_worker();
    }
    State& s = state();
    const std::lock_guard guard(s.mutex);
    s.pre_started_root = true;
    s.world_size = size;
    register_at_exit(s);
}

// Registered during static initialisation, so before the wrapped main looks.
[[maybe_unused]] const bool hook_registered = [] {
    set_before_main_hook(&before_main);
    return true;
}();

int build_id_note(dl_phdr_info* info, std::size_t, void* out)
{
    auto& id = *static_cast<std::string*>(out);
    for (int i = 0; i < info->dlpi_phnum; ++i) {
        const auto& header = info->dlpi_phdr[i];
        if (header.p_type != PT_NOTE) {
            continue;
        }
        const char* at = reinterpret_cast<const char*>(info->dlpi_addr + header.p_vaddr); // NOLINT
        const char* end = at + header.p_memsz;
        while (at + sizeof(ElfW(Nhdr)) <= end) {
            ElfW(Nhdr) note{};
            std::memcpy(&note, at, sizeof note);
            const char* name = at + sizeof note;
            const char* desc = name + ((note.n_namesz + 3) & ~3U);
            if (note.n_type == NT_GNU_BUILD_ID && note.n_namesz == 4 &&
                std::memcmp(name, "GNU", 4) == 0 && desc + note.n_descsz <= end) {
                static constexpr char digits[] = "0123456789abcdef";
                for (std::size_t k = 0; k < note.n_descsz; ++k) {
                    const auto byte = static_cast<unsigned char>(desc[k]);
                    id += digits[byte >> 4];
                    id += digits[byte & 15];
                }
                return 1;
            }
            at = desc + ((note.n_descsz + 3) & ~3U);
        }
    }
    return 1; // the first object is the executable: look no further
}

} // namespace

std::mutex& lock()
{
    static std::mutex mutex; // guards every MPI call futura makes
    return mutex;
}

void ensure_initialized()
{
    State& s = state();
    const std::lock_guard guard(s.mutex);
    const std::lock_guard mpi_guard(lock());
    initialize_locked(s);
    if (s.initialized_here) {
        register_at_exit(s);
    }
}

int thread_level()
{
    State& s = state();
    const std::lock_guard guard(s.mutex);
    return s.provided;
}

std::string build_identity()
{
    std::string id;
    dl_iterate_phdr(&build_id_note, &id);
    if (id.empty()) {
        std::error_code ec;
        const auto path = std::filesystem::read_symlink("/proc/self/exe", ec);
        id = "no build id: " + path.string() + " of " +
             std::to_string(std::filesystem::file_size(path, ec)) + " bytes";
    }
    return id;
}

std::string host_name()
{
    char name[MPI_MAX_PROCESSOR_NAME] = {};
    int length = 0;
    MPI_Get_processor_name(name, &length);
    return {name, static_cast<std::size_t>(length)};
}

void errors_return(MPI_Comm comm)
{
    BOOST_MPI_CHECK_RESULT(MPI_Comm_set_errhandler, (comm, MPI_ERRORS_RETURN));
}

std::optional<MPI_Comm> claim_pre_started()
{
    State& s = state();
    if (!s.pre_started_root) {
        return std::nullopt;
    }
    ensure_initialized();
    const std::lock_guard guard(s.mutex);
    if (s.pre_started_claimed) {
        return std::nullopt;
    }
    if (s.pre_started == MPI_COMM_NULL) {
        const std::lock_guard mpi_guard(lock());
        BOOST_MPI_CHECK_RESULT(MPI_Comm_dup, (MPI_COMM_WORLD, &s.pre_started));
        errors_return(s.pre_started);
    }
    s.pre_started_claimed = true;
    return s.pre_started;
}

void release_pre_started()
{
    State& s = state();
    const std::lock_guard guard(s.mutex);
    s.pre_started_claimed = false;
}

int pre_started_workers() noexcept
{
    State& s = state();
    return s.pre_started_root ? s.world_size - 1 : 0;
}

void declare_spmd() noexcept { spmd.store(true, std::memory_order_relaxed); }

} // namespace futura::detail::mpi
