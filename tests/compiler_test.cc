// What the build's compiler flags must get right (CMakeLists.txt: -mno-avx512f). With AVX-512 enabled,
// Debian 12's GCC 12.2 stored this initializer as eight 1s: a vector constant whose upper half is zero,
// built by broadcasting the lower half's value into the whole register.

#include <gtest/gtest.h>

#include <vector>

namespace {

TEST(Compiler, AVectorConstantWithAZeroUpperHalfKeepsItsZeros) {
  const std::vector<int> labels = {1, 1, 1, 1, 0, 0, 0, 0};
  int sum = 0;
  for (int l : labels) sum += l;
  EXPECT_EQ(sum, 4);
  EXPECT_EQ(labels[7], 0);
}

}  // namespace
