// futura::Initializer and futura::InitArgs: what runs first in each new worker, with Python's
// `initializer=` and `initargs=` spelled `.initializer = init, .initargs = std::tuple{a, b}`.
#pragma once

#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <typeinfo>
#include <utility>

namespace futura {

namespace detail {

/// How an initializer argument is kept: by value, a C string (a string literal) as the
/// `std::string` it stands for, so that it can travel to a worker process.
template <class T>
using init_arg_t = std::conditional_t<std::is_same_v<std::decay_t<T>, const char*> ||
                                          std::is_same_v<std::decay_t<T>, char*>,
                                      std::string, std::decay_t<T>>;

/// The parameter list of a callable with exactly one call signature, as a `std::tuple` of the
/// decayed parameter types; `void` when there is none to find (an overloaded or generic
/// `operator()`).
template <class F, class = void>
struct parameters_of
{
    using type = void;
};
template <class R, class... Args>
struct parameters_of<R (*)(Args...)>
{
    using type = std::tuple<std::decay_t<Args>...>;
};
template <class R, class C, class... Args>
struct parameters_of<R (C::*)(Args...) const>
{
    using type = std::tuple<std::decay_t<Args>...>;
};
template <class R, class C, class... Args>
struct parameters_of<R (C::*)(Args...)>
{
    using type = std::tuple<std::decay_t<Args>...>;
};
template <class F>
struct parameters_of<F, std::void_t<decltype(&F::operator())>>
    : parameters_of<decltype(&F::operator())>
{};

/// "(int, std::string)" for `std::tuple<int, std::string>`: a parameter list for error messages.
std::string describe_tuple(const std::type_info& tuple);

template <class Tuple>
std::string describe_parameters()
{
    return describe_tuple(typeid(Tuple));
}

} // namespace detail

/// The arguments an executor passes to its initializer in each new worker (Python's
/// `initargs`): `.initargs = std::tuple{counter, 3}`. They are kept by value (a string literal as
/// a `std::string`) and must match the initializer's parameters after decay; a process pool
/// sends them to each worker it starts, with the transfer rules of task arguments (a
/// `SharedValue` is shared, a `std::vector` copied).
class InitArgs
{
public:
    /// No arguments: for an initializer without parameters.
    InitArgs() = default;

    template <class... Ts>
    InitArgs(std::tuple<Ts...> values) // NOLINT: implicit, for `.initargs = std::tuple{...}`
        : values_(std::make_shared<const std::tuple<detail::init_arg_t<Ts>...>>(std::apply(
              [](auto&&... v) {
                  return std::tuple<detail::init_arg_t<Ts>...>(std::forward<decltype(v)>(v)...);
              },
              std::move(values)))),
          type_(&typeid(std::tuple<detail::init_arg_t<Ts>...>)),
          description_(&detail::describe_parameters<std::tuple<detail::init_arg_t<Ts>...>>)
    {}

    /// The values as `Tuple`, or null if they are of other types.
    template <class Tuple>
    [[nodiscard]] const Tuple* get() const noexcept
    {
        if (*type_ != typeid(Tuple)) {
            return nullptr;
        }
        if constexpr (std::tuple_size_v<Tuple> == 0) {
            static const Tuple none; // a default InitArgs holds no tuple
            return &none;
        } else {
            return static_cast<const Tuple*>(values_.get());
        }
    }

    /// Their types, as "(int, std::string)".
    [[nodiscard]] std::string describe() const { return description_(); }

private:
    std::shared_ptr<const void> values_;
    const std::type_info* type_ = &typeid(std::tuple<>);
    std::string (*description_)() = &detail::describe_parameters<std::tuple<>>;
};

namespace detail {

/// Throws `std::invalid_argument`, naming `executor`, unless `args` fit an initializer's
/// parameters: `fits` tells, `parameters` describes them; both null when there is no
/// initializer (then only no arguments fit). The check of both kinds of initializer.
void check_initargs(const InitArgs& args, bool (*fits)(const InitArgs&),
                    std::string (*parameters)(), const char* executor);

} // namespace detail

/// What a `ThreadPoolExecutor` runs first in each new worker thread: any callable, a capturing
/// lambda included. One that takes parameters is called with the pool's `initargs`.
class Initializer
{
public:
    /// None.
    Initializer() = default;
    Initializer(std::nullptr_t) noexcept {} // NOLINT: implicit, as std::function's

    template <class F>
        requires(!std::is_same_v<std::decay_t<F>, Initializer> &&
                 !std::is_same_v<std::decay_t<F>, std::nullptr_t>)
    Initializer(F&& f) // NOLINT: implicit, for `.initializer = f`
    {
        using Fn = std::decay_t<F>;
        if constexpr (std::is_invocable_v<Fn&>) {
            bind<std::tuple<>>(std::forward<F>(f));
        } else {
            using Parameters = typename detail::parameters_of<Fn>::type;
            static_assert(!std::is_void_v<Parameters>,
                          "futura: an initializer that takes arguments must have one call "
                          "signature (a function, or a lambda that is not generic)");
            bind<Parameters>(std::forward<F>(f));
        }
    }

    [[nodiscard]] explicit operator bool() const noexcept { return static_cast<bool>(run_); }

    /// Throws `std::invalid_argument`, naming `executor`, unless `args` fit the parameters.
    void check(const InitArgs& args, const char* executor) const
    {
        detail::check_initargs(args, fits_, parameters_, executor);
    }

    /// Calls it with `args` (which `check` accepted).
    void operator()(const InitArgs& args) const { run_(args); }

private:
    template <class Parameters, class F>
    void bind(F&& f)
    {
        run_ = [f = std::forward<F>(f)](const InitArgs& args) mutable {
            std::apply(f, *args.get<Parameters>());
        };
        fits_ = [](const InitArgs& args) { return args.get<Parameters>() != nullptr; };
        parameters_ = &detail::describe_parameters<Parameters>;
    }

    std::function<void(const InitArgs&)> run_;
    bool (*fits_)(const InitArgs&) = nullptr;
    std::string (*parameters_)() = nullptr;
};

} // namespace futura
