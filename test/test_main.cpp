// The one translation unit that defines the Boost.Test module, and with it main(); every test
// executable (one per test file) links it.
#ifndef BOOST_TEST_DYN_LINK
#define BOOST_TEST_DYN_LINK
#endif
#define BOOST_TEST_MODULE futura
#include <boost/test/unit_test.hpp>
