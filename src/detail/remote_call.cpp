// Calls in another process: the invoker registry, function addresses across ASLR, messages.
#include <futura/detail/remote_call.hpp>
#include <futura/detail/remote_task.hpp>
#include <futura/detail/wire.hpp>

#include <boost/core/demangle.hpp>

#include <cstdint>
#include <cstring>
#include <elf.h>
#include <link.h>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

namespace futura::detail {

// ---------------------------------------------------------------------------------------------
// Invoker registry

namespace {

struct Invokers
{
    struct Entry
    {
        RemoteInvoker invoker;
        std::string name;
        bool ambiguous; // two names hash alike: refuse rather than guess
    };
    std::mutex mutex; // guards entries (static initialisers of dlopen'ed libraries may race)
    std::unordered_map<std::uint64_t, Entry> entries;
};

Invokers& invokers()
{
    static Invokers registry; // constructed on first use: registration runs during static init
    return registry;
}

std::uint64_t fnv1a(std::string_view text) noexcept
{
    std::uint64_t hash = 14695981039346656037ULL;
    for (const char c : text) {
        hash ^= static_cast<unsigned char>(c);
        hash *= 1099511628211ULL;
    }
    return hash;
}

} // namespace

std::uint64_t register_remote_invoker(const char* mangled_name, RemoteInvoker invoker) noexcept
{
    const auto id = fnv1a(mangled_name);
    auto& registry = invokers();
    try {
        const std::lock_guard lock(registry.mutex);
        auto [at, inserted] =
            registry.entries.try_emplace(id, Invokers::Entry{invoker, mangled_name, false});
        if (!inserted && at->second.name != mangled_name) {
            at->second.ambiguous = true;
        }
    } catch (...) { // out of memory at start-up: the call type will be reported unknown
    }
    return id;
}

RemoteInvoker find_remote_invoker(std::uint64_t id)
{
    auto& registry = invokers();
    const std::lock_guard lock(registry.mutex);
    const auto found = registry.entries.find(id);
    if (found == registry.entries.end()) {
        throw ProtocolError("futura: a worker was asked to run a call type this program does not "
                            "contain (corrupted message, or parent and worker run different "
                            "builds)");
    }
    if (found->second.ambiguous) {
        throw ProtocolError("futura: two call types of this program share the id " +
                            std::to_string(id) + "; cannot tell which to run");
    }
    return found->second.invoker;
}

// ---------------------------------------------------------------------------------------------
// Function addresses

namespace {

struct Module
{
    std::string name; // empty for the main program
    std::uintptr_t base = 0;
    std::vector<std::pair<std::uintptr_t, std::uintptr_t>> executable; // [begin, end) offsets
    std::uintptr_t eh_frame_hdr = 0; // offset of its .eh_frame_hdr; 0 if none
};

std::vector<Module> loaded_modules()
{
    std::vector<Module> modules;
    dl_iterate_phdr(
        [](dl_phdr_info* info, std::size_t, void* out) {
            Module module;
            module.name = info->dlpi_name != nullptr ? info->dlpi_name : "";
            module.base = info->dlpi_addr;
            for (ElfW(Half) i = 0; i < info->dlpi_phnum; ++i) {
                const auto& segment = info->dlpi_phdr[i];
                if (segment.p_type == PT_LOAD && (segment.p_flags & PF_X) != 0) {
                    module.executable.emplace_back(segment.p_vaddr,
                                                   segment.p_vaddr + segment.p_memsz);
                } else if (segment.p_type == PT_GNU_EH_FRAME) {
                    module.eh_frame_hdr = segment.p_vaddr;
                }
            }
            static_cast<std::vector<Module>*>(out)->push_back(std::move(module));
            return 0;
        },
        &modules);
    return modules;
}

bool executable_offset(const Module& module, std::uintptr_t offset) noexcept
{
    for (const auto& [begin, end] : module.executable) {
        if (offset >= begin && offset < end) {
            return true;
        }
    }
    return false;
}

/// Whether `offset` is where a function of `module` begins. The module's .eh_frame_hdr (which
/// the unwinder needs, so it is there for every C++ function, in stripped programs too) holds a
/// table of every function's first address, sorted: a binary search answers. An offset into
/// the middle of a function, or into code without unwind information, is not an entry.
bool function_entry(const Module& module, std::uintptr_t offset) noexcept
{
    if (module.eh_frame_hdr == 0) {
        return false;
    }
    // NOLINTNEXTLINE: the loader mapped the module's headers at base + their offsets
    const auto* header = reinterpret_cast<const unsigned char*>(module.base + module.eh_frame_hdr);
    constexpr unsigned char udata4 = 0x03;
    constexpr unsigned char datarel_sdata4 = 0x3b;
    if (header[0] != 1 || header[2] != udata4 || header[3] != datarel_sdata4) {
        return false; // a layout GNU toolchains do not write: refuse rather than guess
    }
    std::size_t at = 4;
    switch (header[1] & 0x0f) { // the encoded pointer to .eh_frame, skipped
    case 0x03:
    case 0x0b:
        at += 4;
        break;
    case 0x04:
    case 0x0c:
        at += 8;
        break;
    default:
        return false;
    }
    std::uint32_t count = 0;
    std::memcpy(&count, header + at, sizeof count);
    at += sizeof count;
    // Entries: (function start, its FDE), each a 32-bit offset from the table's header.
    const auto target =
        static_cast<std::int64_t>(offset) - static_cast<std::int64_t>(module.eh_frame_hdr);
    std::size_t low = 0;
    std::size_t high = count;
    while (low < high) {
        const std::size_t middle = low + (high - low) / 2;
        std::int32_t start = 0;
        std::memcpy(&start, header + at + middle * 8, sizeof start);
        if (start == target) {
            return true;
        }
        if (start < target) {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    return false;
}

/// Whether functions of `module` may be named in a call: those of the program and of its own
/// libraries, not those of the system's C and C++ runtime (libc's `_exit`, `system`, ...),
/// which no program needs to send as a bare pointer.
bool callable_module(const Module& module)
{
    if (module.name.empty()) {
        return true; // the program itself
    }
    for (const std::string_view system : {"/lib/", "/lib64/", "/usr/lib/", "/usr/lib64/"}) {
        if (module.name.starts_with(system)) {
            return false;
        }
    }
    return module.name.find("linux-vdso") == std::string::npos;
}

struct AddressCache
{
    std::mutex mutex; // guards both maps
    std::unordered_map<const void*, std::pair<std::string, std::uint64_t>> encoded;
    std::map<std::pair<std::string, std::uint64_t>, const void*> decoded;
};

AddressCache& address_cache()
{
    static AddressCache cache;
    return cache;
}

} // namespace

void encode_function_address(WireWriter& out, const void* function)
{
    auto& cache = address_cache();
    {
        const std::lock_guard lock(cache.mutex);
        if (const auto found = cache.encoded.find(function); found != cache.encoded.end()) {
            out.string(found->second.first);
            out.u64(found->second.second);
            return;
        }
    }
    const auto address = reinterpret_cast<std::uintptr_t>(function); // NOLINT
    for (const auto& module : loaded_modules()) {
        const auto offset = address - module.base;
        if (address >= module.base && executable_offset(module, offset)) {
            if (!callable_module(module)) {
                throw std::invalid_argument(
                    "futura: the function pointer submitted points into a system library (" +
                    module.name +
                    "): a worker runs only functions of the program and its own libraries; "
                    "submit a function (or a captureless lambda) that calls it");
            }
            if (!function_entry(module, offset)) {
                throw std::invalid_argument(
                    "futura: the function pointer submitted is not the start of a function "
                    "with unwind information; submit a function of the program");
            }
            const std::lock_guard lock(cache.mutex);
            cache.encoded.emplace(function, std::make_pair(module.name, offset));
            out.string(module.name);
            out.u64(offset);
            return;
        }
    }
    throw std::invalid_argument("futura: the function pointer submitted does not point into the "
                                "code of this program or of a library it has loaded");
}

const void* decode_function_address(WireReader& in)
{
    std::string name(in.string()); // sequenced: argument evaluation order is unspecified
    const auto offset = in.u64();
    std::pair<std::string, std::uint64_t> key(std::move(name), offset);
    auto& cache = address_cache();
    {
        const std::lock_guard lock(cache.mutex);
        if (const auto found = cache.decoded.find(key); found != cache.decoded.end()) {
            return found->second;
        }
    }
    for (const auto& module : loaded_modules()) {
        if (module.name == key.first) {
            if (!executable_offset(module, key.second)) {
                break;
            }
            if (!callable_module(module)) {
                throw ProtocolError("futura: a worker was sent the address of a function in a "
                                    "system library (" +
                                    module.name + "), which it never runs");
            }
            if (!function_entry(module, key.second)) {
                throw ProtocolError("futura: a worker was sent an address that is not the "
                                    "start of a function of the program; it runs only "
                                    "functions");
            }
            const auto* function =
                reinterpret_cast<const void*>(module.base + key.second); // NOLINT
            const std::lock_guard lock(cache.mutex);
            cache.decoded.emplace(std::move(key), function);
            return function;
        }
    }
    throw ProtocolError("futura: a worker was sent a function address outside the code of the "
                        "program and its libraries (corrupted message, or a library loaded in the "
                        "parent but not in the worker)");
}

// ---------------------------------------------------------------------------------------------

std::string not_transferable_message(const std::type_info& f,
                                     std::initializer_list<const std::type_info*> args,
                                     const std::type_info& r)
{
    std::string call = boost::core::demangle(f.name()) + "(";
    const char* separator = "";
    for (const auto* arg : args) {
        call += separator + boost::core::demangle(arg->name());
        separator = ", ";
    }
    call += ") -> " + boost::core::demangle(r.name());
    return "futura: this call cannot run in a worker process: " + call +
           ". A ProcessPoolExecutor needs a function pointer, a captureless lambda or a "
           "serializable function object, with futura::transferable arguments and result "
           "(trivially copyable data without pointers, std::string, standard containers, or "
           "classes with a Boost.Serialization serialize()). Submit it to a ThreadPoolExecutor "
           "instead, or submit through ProcessPoolExecutor itself to have the compiler say which "
           "part is wrong.";
}

} // namespace futura::detail
