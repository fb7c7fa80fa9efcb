// The compiled part of futura::Initializer and futura::ProcessInitializer: the check that an
// executor's initargs fit its initializer, with the message both kinds of executor give.
#include <futura/initializer.hpp>

#include <boost/core/demangle.hpp>

#include <stdexcept>
#include <string>
#include <tuple>
#include <typeinfo>

namespace futura::detail {

std::string describe_tuple(const std::type_info& tuple)
{
    std::string name = boost::core::demangle(tuple.name());
    const auto open = name.find('<');
    return open == std::string::npos ? "()"
                                     : "(" + name.substr(open + 1, name.size() - open - 2) + ")";
}

void check_initargs(const InitArgs& args, bool (*fits)(const InitArgs&),
                    std::string (*parameters)(), const char* executor)
{
    if (fits == nullptr) {
        if (args.get<std::tuple<>>() == nullptr) {
            throw std::invalid_argument(std::string(executor) + ": initargs " + args.describe() +
                                        " given without an initializer");
        }
        return;
    }
    if (!fits(args)) {
        throw std::invalid_argument(std::string(executor) + ": the initializer takes " +
                                    parameters() + " but initargs holds " + args.describe());
    }
}

} // namespace futura::detail
