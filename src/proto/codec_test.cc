// Tests of the strict codec: every message round-trips; every truncation,
// every over-limit field, every bad enum and trailing byte is refused with
// kProtocol and a message naming the field; the biggest legal replies fit
// their limit; and a bounded fuzz loop of mutations never crashes and never
// accepts a message that does not re-encode to the same bytes.
//
// PMM_TEST_SCALE (a float, default 1) scales the fuzz iterations.
#include "proto/codec.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <set>

#include "proto/test_messages.h"

namespace pmm::proto {
namespace {

using testing::HasSubstr;

std::vector<std::byte> encoded(const Message& m) {
  auto b = encode(m);
  EXPECT_TRUE(b) << b.error().describe();
  return b ? *b : std::vector<std::byte>{};
}

void set_u32(std::vector<std::byte>& b, size_t at, uint32_t v) {
  for (size_t i = 0; i < 4; ++i) b[at + i] = static_cast<std::byte>(v >> (8 * i));
}
void set_u16(std::vector<std::byte>& b, size_t at, uint16_t v) {
  b[at] = static_cast<std::byte>(v);
  b[at + 1] = static_cast<std::byte>(v >> 8);
}
void fix_length(std::vector<std::byte>& b) {
  set_u32(b, 12, static_cast<uint32_t>(b.size() - kHeaderSize));
}

Result<Message> decode_as_direction(const Message& m, std::span<const std::byte> bytes) {
  return is_request(type_of(m.body)) ? decode_request(bytes) : decode_reply(bytes);
}

TEST(Codec, SamplesCoverEveryMessageType) {
  std::set<size_t> seen;
  for (const auto& m : testing_samples()) seen.insert(m.body.index());
  EXPECT_EQ(seen.size(), std::variant_size_v<Body>);
}

TEST(Codec, EveryMessageRoundTrips) {
  for (const auto& m : testing_samples()) {
    SCOPED_TRACE(message_type_name(type_of(m.body)));
    auto bytes = encoded(m);
    auto back = decode_as_direction(m, bytes);
    ASSERT_TRUE(back) << back.error().describe();
    EXPECT_EQ(*back, m);
    auto any = decode(bytes);
    ASSERT_TRUE(any);
    EXPECT_EQ(*any, m);
  }
}

TEST(Codec, EveryTruncationIsRefused) {
  size_t checked = 0;
  for (const auto& m : testing_samples()) {
    SCOPED_TRACE(message_type_name(type_of(m.body)));
    auto bytes = encoded(m);
    for (size_t len = 0; len < bytes.size(); ++len) {
      std::vector<std::byte> cut(bytes.begin(), bytes.begin() + static_cast<ptrdiff_t>(len));
      auto raw = decode(cut);  // header still announces the full length
      ASSERT_FALSE(raw) << "length " << len;
      EXPECT_EQ(raw.error().code, Errc::kProtocol);
      if (len >= kHeaderSize) {
        fix_length(cut);  // a consistent header over a short payload
        auto short_payload = decode(cut);
        ASSERT_FALSE(short_payload) << "payload cut to " << len - kHeaderSize;
        EXPECT_EQ(short_payload.error().code, Errc::kProtocol);
        EXPECT_THAT(short_payload.error().message,
                    HasSubstr(std::string(message_type_name(type_of(m.body)))));
      }
      ++checked;
    }
  }
  EXPECT_GT(checked, 1000u);
}

TEST(Codec, TrailingBytesAreRefused) {
  for (const auto& m : testing_samples()) {
    auto bytes = encoded(m);
    bytes.push_back(std::byte{0});
    fix_length(bytes);
    auto r = decode(bytes);
    ASSERT_FALSE(r);
    EXPECT_THAT(r.error().message, HasSubstr("1 trailing bytes"));
  }
}

TEST(Codec, ListCountOverItsLimitNamesMessageFieldAndLimit) {
  Allocate a{.pools = {"dma"}, .size = 4096};
  auto bytes = encoded({.request_id = 1, .body = a});
  set_u32(bytes, kHeaderSize, 300);  // the pool list's count
  auto r = decode_request(bytes);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kProtocol);
  EXPECT_EQ(r.error().message, "Allocate: pool list has 300 entries; at most 16");

  a.pools.assign(17, "p");
  auto e = encode({.request_id = 1, .body = a});
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().code, Errc::kInvalidArgument);
  EXPECT_EQ(e.error().message, "Allocate: pool list has 17 entries; at most 16");
}

TEST(Codec, HugeCountIsRefusedBeforeAllocating) {
  auto bytes = encoded({.request_id = 1, .body = BlockList{}});
  set_u32(bytes, kHeaderSize, 0xffffffff);
  auto r = decode_reply(bytes);
  ASSERT_FALSE(r);
  EXPECT_THAT(r.error().message, HasSubstr("blocks has 4294967295 entries; at most 64"));
}

TEST(Codec, OverlongStringsAreRefusedOnBothSides) {
  Hello h{.device = std::string(kMaxNameLength + 1, 'd')};
  auto e = encode({.request_id = 1, .body = h});
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().message, "Hello: device is 65 bytes long; at most 64");

  h.device = std::string(kMaxNameLength, 'd');
  auto bytes = encoded({.request_id = 1, .body = h});
  set_u16(bytes, kHeaderSize + 2, 65);  // device length, after protocol_version
  bytes.insert(bytes.begin() + kHeaderSize + 4, std::byte{'d'});
  fix_length(bytes);
  auto r = decode_request(bytes);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, "Hello: device is 65 bytes long; at most 64");

  h.device = std::string("a\0b", 3);
  auto nul = encode({.request_id = 1, .body = h});
  ASSERT_FALSE(nul);
  EXPECT_THAT(nul.error().message, HasSubstr("NUL"));
}

TEST(Codec, NestedFieldErrorsNameTheirPath) {
  BlockList l;
  l.blocks.resize(2);
  l.blocks[1].holders.resize(1);
  l.blocks[1].holders[0].device = std::string(70, 'x');
  auto e = encode({.request_id = 1, .body = l});
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().message,
            "BlockList: blocks[1].holders[0].device is 70 bytes long; at most 64");
}

TEST(Codec, EnumsBooleansFlagsAndLimitsAreRangeChecked) {
  // Corrupt one byte at a known offset of a valid message and expect a message.
  struct Case {
    Message m;
    size_t payload_offset;
    uint8_t value;
    std::string want;
  };
  std::vector<Case> cases = {
      {{1, ErrorReply{.code = Errc::kNotFound, .message = "x"}},
       0,
       0,
       "Error: code is 0; expected an error code from 1 to 12"},
      {{1, ErrorReply{.code = Errc::kNotFound, .message = "x"}},
       0,
       13,
       "Error: code is 13; expected an error code from 1 to 12"},
      // PoolList: count(4) index(4) name(2+1) -> type at 11
      {{1, PoolList{.pools = {PoolInfo{.name = "g"}}}},
       11,
       3,
       "PoolList: pools[0].type is 3; expected 0 (shmem), 1 (hugetlb) or 2 (sysv)"},
      // BlockList: count(4) no holders entry... next_after_id after one empty block
      {{1, BlockList{.more = true}}, 12, 2, "BlockList: more is 2; a boolean is 0 or 1"},
      // Allocate: count(4) size(8) alignment(8) flags at 20
      {{1, Allocate{.size = 1}},
       20,
       0x8,
       "Allocate: flags 0x8 has unknown bits; known: contiguous=0x1, zero=0x2"},
      // ListBlocks: after_id(8) limit at 8
      {{1, ListBlocks{}}, 8, 65, "ListBlocks: limit 65 is above the page size 64; use 0 to 64"},
  };
  for (auto& c : cases) {
    auto bytes = encoded(c.m);
    bytes[kHeaderSize + c.payload_offset] = std::byte{c.value};
    auto r = decode(bytes);
    ASSERT_FALSE(r) << c.want;
    EXPECT_EQ(r.error().code, Errc::kProtocol);
    EXPECT_EQ(r.error().message, c.want);
  }
}

TEST(Codec, PoolMemoryMustBeConsistent) {
  BlockInfo sysv_with_fd{.memory = {.type = PoolType::kSysv, .fd_attached = true, .shmid = 3}};
  EXPECT_FALSE(encode({1, sysv_with_fd}));
  BlockInfo sysv_without_shmid{.memory = {.type = PoolType::kSysv, .shmid = -1}};
  EXPECT_FALSE(encode({1, sysv_without_shmid}));
  BlockInfo shmem_with_shmid{.memory = {.type = PoolType::kShmem, .shmid = 5}};
  auto e = encode({1, shmem_with_shmid});
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error().message, "BlockInfo: memory.shmid is 5 for a shmem pool; it must be -1");
}

TEST(Codec, HeaderIsChecked) {
  auto good = encoded({.request_id = 9, .body = Get{.block_id = 5}});
  auto bad_magic = good;
  bad_magic[0] = std::byte{'X'};
  EXPECT_THAT(decode(bad_magic).error().message, HasSubstr("bad magic"));
  auto bad_type = good;
  set_u16(bad_type, 6, 50);
  EXPECT_THAT(decode(bad_type).error().message, HasSubstr("unknown message type 50"));
  EXPECT_THAT(decode(std::span(good).first(3)).error().message,
              HasSubstr("message is 3 bytes; the header alone is 16"));
  // Direction.
  EXPECT_THAT(decode_reply(good).error().message, HasSubstr("Get is a request"));
  auto reply = encoded({.request_id = 9, .body = Ok{}});
  EXPECT_THAT(decode_request(reply).error().message, HasSubstr("Ok is a reply"));
}

TEST(Codec, VersionMismatchNamesBothVersionsButHelloStillDecodes) {
  constexpr uint16_t kNewer = kProtocolVersion + 1;
  auto get = encoded({.request_id = 9, .body = Get{.block_id = 5}});
  set_u16(get, 4, kNewer);
  auto r = decode_request(get);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message, fmt::format("Get: protocol version {}; this side speaks version {}",
                                           kNewer, kProtocolVersion));

  // A newer client's Hello: the daemon reads it and can answer with an
  // ErrorReply naming both versions.
  auto hello =
      encoded({.request_id = 1, .body = Hello{.protocol_version = kNewer, .device = "cam"}});
  set_u16(hello, 4, kNewer);
  auto h = decode_request(hello);
  ASSERT_TRUE(h) << h.error().describe();
  EXPECT_EQ(std::get<Hello>(h->body).protocol_version, kNewer);
  auto err =
      encoded({.request_id = 1, .body = ErrorReply{.code = Errc::kProtocol, .message = "v"}});
  set_u16(err, 4, 7);
  EXPECT_TRUE(decode_reply(err));
}

TEST(Codec, LargestLegalMessagesFitTheirLimits) {
  for (const auto& m : testing_largest_messages()) {
    SCOPED_TRACE(message_type_name(type_of(m.body)));
    auto bytes = encoded(m);
    size_t limit = is_request(type_of(m.body)) ? kMaxRequestSize : kMaxReplySize;
    EXPECT_LE(bytes.size(), limit);
    auto back = decode(bytes);
    ASSERT_TRUE(back) << back.error().describe();
    EXPECT_EQ(*back, m);
    std::printf("largest %-12s %7zu bytes (limit %zu)\n",
                std::string(message_type_name(type_of(m.body))).c_str(), bytes.size(), limit);
  }
  std::vector<std::byte> oversize(kMaxRequestSize + 1);
  EXPECT_THAT(decode_request(oversize).error().message, HasSubstr("at most 65536"));
  std::vector<std::byte> oversize_reply(kMaxReplySize + 1);
  EXPECT_THAT(decode_reply(oversize_reply).error().message, HasSubstr("at most 131072"));
}

TEST(Codec, ErrorReplyFromLongErrorIsCutAndEncodes) {
  Error e{Errc::kNoMemory, std::string(kMaxTextLength - 1, 'a') + "\xc3\xa9tail", 0};
  ErrorReply r = from_error(e);
  EXPECT_EQ(r.message.size(), kMaxTextLength - 1) << "cut before the 2-byte character";
  EXPECT_TRUE(encode({1, r}));
  EXPECT_EQ(from_error(Error{Errc::kOk, "odd", 0}).code, Errc::kSystem);
  EXPECT_EQ(to_error(r).code, Errc::kNoMemory);
}

// pmmd decodes every request through one RequestSlots, so a slot holds
// whatever the previous request of its type left: the result must be what
// decode_request gives for the same bytes, in every order, accepted or not.
TEST(Codec, RequestSlotsDecodeAsDecodeRequestWhateverCameBefore) {
  RequestSlots slots;
  std::vector<std::vector<std::byte>> inputs;
  for (const auto& m : testing_samples()) inputs.push_back(encoded(m));
  for (const auto& m : testing_largest_messages()) inputs.push_back(encoded(m));
  // An Allocate with two pools, then one with none: no stale name survives.
  inputs.push_back(encoded({3, Allocate{.pools = {"a", "bb"}, .size = 4096}}));
  inputs.push_back(encoded({4, Allocate{.size = 8192}}));
  inputs.push_back(encoded({5, Allocate{.pools = {"c"}, .size = 1}}));
  // The requests read directly (codec_direct.cc): the same name again, a
  // longer and a shorter one, a full list, and every flag.
  inputs.push_back(encoded({6, Allocate{.pools = {"c"}, .size = 2, .alignment = 64}}));
  inputs.push_back(encoded({7, Allocate{.pools = {"cc", "d"}, .size = 3, .flags = 3}}));
  inputs.push_back(encoded({8, Allocate{.pools = std::vector<std::string>(
                                            kMaxAllocatePools, std::string(kMaxNameLength, 'n')),
                                        .size = ~uint64_t{0}}}));
  // A name with a NUL (the generic path assigns it, then refuses it), the
  // same again, the name without it, and the NUL again: a refused name
  // must not be taken for one that passed.
  auto nul = encoded({11, Allocate{.pools = {"abc"}, .size = 5}});
  nul[kHeaderSize + 4 + 2 + 1] = std::byte{0};
  inputs.push_back(nul);
  inputs.push_back(nul);
  inputs.push_back(encoded({12, Allocate{.pools = {"abc"}, .size = 5}}));
  inputs.push_back(nul);
  inputs.push_back(encoded({9, Put{.block_id = 77}}));
  inputs.push_back(encoded({13, Export{.block_id = 5, .max_imports = 3, .lifetime_ms = 100}}));
  inputs.push_back(encoded({14, Import{.token = testing_token(9)}}));
  inputs.push_back(encoded({10, Get{.block_id = ~uint64_t{0}}}));
  // Hello, read directly too: the same device again, another, none, the
  // longest, and one with a NUL (refused, then the same name without it).
  inputs.push_back(encoded({15, Hello{.device = "decoder", .pid = -7}}));
  inputs.push_back(encoded({16, Hello{.device = "decoder", .pid = 1}}));
  inputs.push_back(encoded({17, Hello{.device = "scaler"}}));
  inputs.push_back(encoded({18, Hello{}}));
  inputs.push_back(encoded({19, Hello{.device = std::string(kMaxNameLength, 'h')}}));
  auto hello_nul = encoded({20, Hello{.device = "abc"}});
  hello_nul[kHeaderSize + 2 + 2 + 1] = std::byte{0};
  inputs.push_back(hello_nul);
  inputs.push_back(encoded({21, Hello{.device = "abc"}}));
  inputs.push_back(encoded({22, Hello{.protocol_version = 9, .device = "abc"}}));
  std::mt19937_64 rng(7);
  for (int round = 0; round < 5; ++round) {
    for (size_t i = 0; i < inputs.size(); ++i) {
      std::vector<std::byte> b = inputs[round == 0 ? i : rng() % inputs.size()];
      if (round == 2 && !b.empty()) b[rng() % b.size()] ^= std::byte{0x10};
      // Any bit of the payload, and lengths that disagree with it (the
      // header's length kept right so that the payload is what is judged).
      if (round == 3 && b.size() > kHeaderSize)
        b[kHeaderSize + rng() % (b.size() - kHeaderSize)] ^= std::byte{uint8_t(1u << (rng() % 8))};
      if (round == 4 && b.size() > kHeaderSize) {
        if (rng() % 2 == 0) {
          b.resize(kHeaderSize + rng() % (b.size() - kHeaderSize));
        } else {
          b.push_back(static_cast<std::byte>(rng()));
        }
        fix_length(b);
      }
      auto want = decode_request(b);
      auto got = slots.decode(b);
      ASSERT_EQ(got.has_value(), want.has_value()) << i;
      if (want) {
        EXPECT_EQ(**got, *want);
      } else {
        EXPECT_EQ(got.error().code, want.error().code);
        EXPECT_EQ(got.error().message, want.error().message);
      }
    }
  }
}

// libpmm decodes every reply into one Message per thread, so it holds
// whatever the previous reply left: the result must be what decode_reply
// gives for the same bytes, in every order, accepted or not (requests,
// wrong lengths, other versions, fuzzed bytes).
TEST(Codec, DecodeReplyIntoDecodesAsDecodeReplyWhateverCameBefore) {
  Message into;
  std::vector<std::vector<std::byte>> inputs;
  for (const auto& m : testing_samples()) inputs.push_back(encoded(m));
  for (const auto& m : testing_largest_messages()) inputs.push_back(encoded(m));
  // BlockInfos of a long pool name, then a short one, then none: no stale
  // byte of a name survives in the reused string.
  BlockInfo info{.block_id = 9, .pool_name = std::string(kMaxNameLength, 'p'), .size = 4096};
  inputs.push_back(encoded({3, info}));
  info.pool_name = "g";
  inputs.push_back(encoded({4, info}));
  info.pool_name.clear();
  inputs.push_back(encoded({5, info}));
  inputs.push_back(encoded({6, Ok{}}));
  // A frozen layout of another version, which decode_reply accepts.
  auto other_version = encoded({7, ErrorReply{.code = Errc::kProtocol, .message = "v"}});
  other_version[4] = std::byte{0x7f};
  inputs.push_back(other_version);
  inputs.push_back({});
  std::mt19937_64 rng(11);
  for (int round = 0; round < 4; ++round) {
    for (size_t i = 0; i < inputs.size(); ++i) {
      std::vector<std::byte> b = inputs[round == 0 ? i : rng() % inputs.size()];
      if (round >= 2 && !b.empty()) b[rng() % b.size()] ^= std::byte{uint8_t(1u << (rng() % 8))};
      if (round == 3 && !b.empty() && rng() % 2 == 0) b.resize(rng() % b.size());
      auto want = decode_reply(b);
      auto got = decode_reply_into(b, into);
      ASSERT_EQ(got.has_value(), want.has_value()) << round << " " << i;
      if (want) {
        EXPECT_EQ(into, *want);
      } else {
        EXPECT_EQ(got.error().code, want.error().code);
        EXPECT_EQ(got.error().message, want.error().message);
        // `into` is left half-decoded: the next round decodes over it.
      }
    }
  }
}

// The replies of every alloc+put (BlockInfo, Ok), of every Hello (Welcome)
// and Export (TokenReply) take a path of their own in decode_reply_into: every bit flipped and
// every cut of them is accepted or refused exactly as decode_reply does, with the same message,
// whatever the Message held before (another BlockInfo, an Ok, nothing).
TEST(Codec, DecodeReplyIntoAgreesOnEveryBitOfItsCommonReplies) {
  const BlockInfo shmem{.block_id = 0x1122334455667788,
                        .pool_index = 3,
                        .pool_name = "general",
                        .offset = 4096,
                        .size = 8192,
                        .phys = 0x1000,
                        .memory = {.type = PoolType::kShmem,
                                   .fd_attached = true,
                                   .pool_size = 1 << 20,
                                   .page_size = 4096,
                                   .shmid = -1}};
  BlockInfo sysv = shmem;
  sysv.pool_name = "x";
  sysv.memory = {.type = PoolType::kSysv, .pool_size = 1 << 20, .page_size = 4096, .shmid = 7};
  BlockInfo unnamed = shmem;
  unnamed.pool_name.clear();
  unnamed.memory.type = PoolType::kHugetlb;
  std::vector<std::vector<std::byte>> inputs = {
      encoded({1, shmem}),
      encoded({2, sysv}),
      encoded({3, unnamed}),
      encoded({4, Ok{}}),
      encoded({5, Welcome{.session_id = 0x0102030405060708, .daemon_version = "pmmd 0.1.0"}}),
      encoded({6, Welcome{.daemon_version = ""}}),
      encoded({7, TokenReply{.token = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}}})};
  std::vector<std::vector<std::byte>> variants;
  for (const auto& b : inputs) {
    variants.push_back(b);
    for (size_t i = 0; i < b.size(); ++i) {
      for (int bit = 0; bit < 8; ++bit) {
        auto flipped = b;
        flipped[i] ^= std::byte{static_cast<uint8_t>(1u << bit)};
        variants.push_back(std::move(flipped));
      }
    }
    for (size_t n = 0; n < b.size(); ++n) variants.emplace_back(b.begin(), b.begin() + n);
  }
  size_t accepted = 0;
  for (const Message& before : {Message{0, shmem}, Message{0, Ok{}}, Message{0, sysv},
                                Message{0, Welcome{}}, Message{0, TokenReply{}}}) {
    for (const auto& b : variants) {
      Message into = before;
      auto want = decode_reply(b);
      auto got = decode_reply_into(b, into);
      ASSERT_EQ(got.has_value(), want.has_value());
      if (want) {
        ++accepted;
        EXPECT_EQ(into, *want);
      } else {
        EXPECT_EQ(got.error().code, want.error().code);
        EXPECT_EQ(got.error().message, want.error().message);
      }
    }
  }
  // Flips of ids, sizes and addresses are still messages: both paths ran.
  EXPECT_GT(accepted, 5 * 7 * 100);
}

// The span form writes the bytes the vector form does, says the size when
// the buffer is too small, and refuses what does not encode the same way.
TEST(Codec, EncodeIntoSpanMatchesEncodeAndReportsTheSizeItNeeds) {
  for (const auto& m : testing_samples()) {
    SCOPED_TRACE(message_type_name(type_of(m.body)));
    auto want = encoded(m);
    std::vector<std::byte> buf(kMaxReplySize);
    auto n = encode_into(m, std::span<std::byte>(buf));
    ASSERT_TRUE(n) << n.error().describe();
    ASSERT_EQ(*n, want.size());
    EXPECT_TRUE(std::equal(want.begin(), want.end(), buf.begin()));
    std::vector<std::byte> small(want.size() - 1);
    auto short_n = encode_into(m, std::span<std::byte>(small));
    ASSERT_TRUE(short_n);
    EXPECT_EQ(*short_n, want.size());
  }
  Message bad{1, Hello{.device = std::string(kMaxNameLength + 1, 'x')}};
  std::vector<std::byte> buf(kMaxReplySize);
  auto n = encode_into(bad, std::span<std::byte>(buf));
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error().message, encode(bad).error().message);
  EXPECT_THAT(n.error().message, HasSubstr("Hello: device"));
}

// pmmd encodes every reply through encode_reply_into, whose BlockInfo, Ok,
// TokenReply and Welcome are written field by field: over many values, valid and not (names
// too long or with a NUL, bad pool types, sysv with an fd or without a
// shmid, buffers too small), it must give encode_into's bytes, size and
// refusal exactly; other types are encode_into's.
TEST(Codec, EncodeReplyIntoMatchesEncodeIntoByteForByte) {
  std::mt19937_64 rng(13);
  std::vector<Message> messages = testing_samples();
  for (const auto& m : testing_largest_messages()) messages.push_back(m);
  const std::array<std::string, 6> names = {"",
                                            "g",
                                            "general",
                                            std::string(kMaxNameLength, 'p'),
                                            std::string(kMaxNameLength + 1, 'q'),
                                            std::string("nu\0l", 4)};
  const std::array<uint64_t, 6> values = {0,           1, 4096, 0xffffffffull, 0x123456789abcdefull,
                                          ~uint64_t{0}};
  for (int i = 0; i < 4000; ++i) {
    BlockInfo b{.block_id = values[rng() % values.size()] ^ (rng() % 3),
                .pool_index = static_cast<uint32_t>(rng()),
                .pool_name = names[rng() % names.size()],
                .offset = values[rng() % values.size()],
                .size = values[rng() % values.size()],
                .phys = rng() % 2 == 0 ? 0 : rng(),
                .memory = PoolMemory{.type = static_cast<PoolType>(rng() % 4),
                                     .fd_attached = rng() % 2 == 0,
                                     .pool_size = values[rng() % values.size()],
                                     .page_size = uint64_t{1} << (rng() % 31),
                                     .shmid = static_cast<int32_t>(rng() % 3) - 1}};
    messages.push_back({static_cast<uint32_t>(rng()), std::move(b)});
  }
  for (const std::string& name : names) {
    messages.push_back(
        {static_cast<uint32_t>(rng()), Welcome{.protocol_version = static_cast<uint16_t>(rng()),
                                               .session_id = values[rng() % values.size()],
                                               .daemon_version = name}});
  }
  messages.push_back({0, Ok{}});
  messages.push_back({~uint32_t{0}, Ok{}});
  for (int seed : {0, 1, 200}) {
    messages.push_back(
        {static_cast<uint32_t>(seed), TokenReply{testing_token(static_cast<uint8_t>(seed))}});
  }
  size_t accepted = 0;
  for (size_t i = 0; i < messages.size(); ++i) {
    const Message& m = messages[i];
    SCOPED_TRACE(i);
    for (size_t room : {kMaxReplySize, size_t{kHeaderSize + 60}, size_t{kHeaderSize}, size_t{3}}) {
      std::vector<std::byte> want_buf(room, std::byte{0x5a});
      std::vector<std::byte> got_buf(room, std::byte{0x5a});
      auto want = encode_into(m, std::span<std::byte>(want_buf));
      auto got = encode_reply_into(m, std::span<std::byte>(got_buf));
      ASSERT_EQ(got.has_value(), want.has_value());
      if (!want) {
        EXPECT_EQ(got.error().code, want.error().code);
        EXPECT_EQ(got.error().message, want.error().message);
        continue;
      }
      ASSERT_EQ(*got, *want);
      if (*want <= room) {
        ++accepted;
        EXPECT_TRUE(std::equal(want_buf.begin(), want_buf.begin() + static_cast<ptrdiff_t>(*want),
                               got_buf.begin()));
      }
    }
  }
  // Enough of them valid and fitting for the comparison to mean something.
  EXPECT_GT(accepted, messages.size() / 10);
}

double test_scale() {
  const char* s = std::getenv("PMM_TEST_SCALE");
  double v = s != nullptr ? std::atof(s) : 1.0;
  return v > 0 ? v : 1.0;
}

// Mutations of valid messages: never a crash; anything accepted must be a
// canonical encoding (re-encodes to the very same payload).
TEST(Codec, FuzzedMessagesNeverCrashAndAcceptedOnesAreCanonical) {
  auto samples = testing_samples();
  std::vector<std::vector<std::byte>> seeds;
  for (const auto& m : samples) seeds.push_back(encoded(m));
  std::mt19937_64 rng(0x504d4d31);
  const size_t iterations = static_cast<size_t>(200000 * test_scale());
  size_t accepted = 0;
  auto start = std::chrono::steady_clock::now();
  for (size_t i = 0; i < iterations; ++i) {
    std::vector<std::byte> b = seeds[rng() % seeds.size()];
    int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits; ++k) {
      switch (rng() % 6) {
        case 0:
          b[rng() % b.size()] ^= std::byte{static_cast<uint8_t>(1u << (rng() % 8))};
          break;
        case 1:
          b[rng() % b.size()] = static_cast<std::byte>(rng());
          break;
        case 2:
          b.resize(rng() % (b.size() + 1));
          break;
        case 3:
          b.insert(b.begin() + static_cast<ptrdiff_t>(rng() % (b.size() + 1)),
                   static_cast<std::byte>(rng()));
          break;
        case 4:
          for (auto& x : b) x = static_cast<std::byte>(rng());
          break;
        case 5:
          if (b.size() >= kHeaderSize) fix_length(b);  // get past the header check
          break;
      }
      if (b.empty()) b.push_back(std::byte{0});
    }
    auto r = decode(b);
    if (!r) {
      EXPECT_EQ(r.error().code, Errc::kProtocol);
      EXPECT_FALSE(r.error().message.empty());
      continue;
    }
    ++accepted;
    auto again = encode(*r);
    ASSERT_TRUE(again) << again.error().describe();
    // Equal except the header's version, which frozen layouts may differ in.
    ASSERT_EQ(again->size(), b.size());
    ASSERT_TRUE(std::equal(again->begin() + 6, again->end(), b.begin() + 6));
  }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("fuzz: %zu mutations, %zu accepted, %.2f s\n", iterations, accepted, secs);
}

}  // namespace
}  // namespace pmm::proto
