// Tests of proto/channel.h over real SEQPACKET socket pairs: every message
// crosses the socket intact, a pool's memfd travels with the BlockInfo that
// announces it and the receiver maps and reads it, and every broken rule
// (fd count, oversize, undecodable bytes, wrong direction) is kProtocol with
// the fds that came along closed.
#include "proto/channel.h"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <string>

#include "proto/codec.h"
#include "proto/test_messages.h"

namespace pmm::proto {
namespace {

using testing::HasSubstr;

struct Pair {
  os::UniqueFd client;
  os::UniqueFd daemon;
};

Pair make_pair() {
  auto p = os::socket_pair();
  EXPECT_TRUE(p) << p.error().describe();
  return {std::move(p->first), std::move(p->second)};
}

bool read_end_sees_eof(int read_fd) {
  char c;
  return ::read(read_fd, &c, 1) == 0;
}

TEST(Channel, EveryMessageCrossesTheSocket) {
  Pair p = make_pair();
  os::UniqueFd mem(::memfd_create("pmm-channel-test", MFD_CLOEXEC));
  ASSERT_TRUE(mem);
  for (const auto& m : testing_samples()) {
    SCOPED_TRACE(message_type_name(type_of(m.body)));
    bool request = is_request(type_of(m.body));
    int from = request ? p.client.get() : p.daemon.get();
    int to = request ? p.daemon.get() : p.client.get();
    int fd = fds_expected(m.body) == 1 ? mem.get() : -1;
    ASSERT_TRUE(send(from, m, fd));
    auto in = request ? receive_request(to) : receive_reply(to);
    ASSERT_TRUE(in) << in.error().describe();
    ASSERT_TRUE(in->has_value());
    EXPECT_EQ((*in)->message, m);
    EXPECT_EQ((*in)->fd.valid(), fd >= 0);
  }
}

// The largest legal replies fit one datagram under the default socket buffer.
TEST(Channel, LargestMessagesFitOneDatagram) {
  Pair p = make_pair();
  for (const auto& m : testing_largest_messages()) {
    SCOPED_TRACE(message_type_name(type_of(m.body)));
    bool request = is_request(type_of(m.body));
    auto sent = send(request ? p.client.get() : p.daemon.get(), m);
    ASSERT_TRUE(sent) << sent.error().describe();
    auto in = request ? receive_request(p.daemon.get()) : receive_reply(p.client.get());
    ASSERT_TRUE(in && *in);
    EXPECT_EQ((*in)->message, m);
  }
}

TEST(Channel, PoolFdTravelsWithBlockInfoAndMapsThePool) {
  Pair p = make_pair();
  const size_t pool_size = 1 << 20;
  os::UniqueFd mem(::memfd_create("pmm-pool", MFD_CLOEXEC));
  ASSERT_TRUE(mem);
  ASSERT_EQ(::ftruncate(mem.get(), pool_size), 0);
  const std::string frame = "decoded frame 7";
  ASSERT_EQ(::pwrite(mem.get(), frame.data(), frame.size(), 65536),
            static_cast<ssize_t>(frame.size()));

  BlockInfo info{.block_id = 3,
                 .pool_index = 0,
                 .pool_name = "general",
                 .offset = 65536,
                 .size = 4096,
                 .phys = 0,
                 .memory = {.type = PoolType::kShmem,
                            .fd_attached = true,
                            .pool_size = pool_size,
                            .page_size = 4096,
                            .shmid = -1}};
  ASSERT_TRUE(send(p.daemon.get(), {.request_id = 5, .body = info}, mem.get()));
  mem.reset();

  auto in = receive_reply(p.client.get());
  ASSERT_TRUE(in && *in);
  const auto& got = std::get<BlockInfo>((*in)->message.body);
  ASSERT_TRUE((*in)->fd.valid());
  void* base =
      ::mmap(nullptr, got.memory.pool_size, PROT_READ | PROT_WRITE, MAP_SHARED, (*in)->fd.get(), 0);
  ASSERT_NE(base, MAP_FAILED);
  EXPECT_EQ(std::string(static_cast<char*>(base) + got.offset, frame.size()), frame);
  ::munmap(base, got.memory.pool_size);
}

// receive_reply_into with fd_possible (recvmsg) and without (recv): the
// same messages either way, an fd only where there was room for it. A
// BlockInfo that announces an fd read without room comes back intact with
// fd_lost (kSystem, naming the pool) and its fd dropped by the kernel, not
// installed here.
TEST(Channel, ReplyReadWithoutRoomForAnFdLosesItVisibly) {
  Pair p = make_pair();
  Envelope e;
  ASSERT_TRUE(send(p.daemon.get(), {.request_id = 3, .body = Ok{}}));
  auto plain = receive_reply_into(p.client.get(), e, 0, /*fd_possible=*/false);
  ASSERT_TRUE(plain && *plain);
  EXPECT_EQ(e.message.request_id, 3u);
  EXPECT_TRUE(std::holds_alternative<Ok>(e.message.body));
  EXPECT_FALSE(e.fd_lost);

  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  const BlockInfo info{.block_id = 9,
                       .pool_index = 2,
                       .pool_name = "frames",
                       .offset = 0,
                       .size = 4096,
                       .memory = {.type = PoolType::kShmem,
                                  .fd_attached = true,
                                  .pool_size = 1 << 20,
                                  .page_size = 4096,
                                  .shmid = -1}};
  ASSERT_TRUE(send(p.daemon.get(), {.request_id = 4, .body = info}, pipe_fds[1]));
  ASSERT_TRUE(send(p.daemon.get(), {.request_id = 5, .body = info}, pipe_fds[1]));
  ::close(pipe_fds[1]);

  auto with_room = receive_reply_into(p.client.get(), e, 0, /*fd_possible=*/true);
  ASSERT_TRUE(with_room && *with_room);
  EXPECT_EQ(e.message.request_id, 4u);
  EXPECT_TRUE(e.fd.valid());
  EXPECT_FALSE(e.fd_lost);
  e.fd.reset();

  auto without = receive_reply_into(p.client.get(), e, 0, /*fd_possible=*/false);
  ASSERT_TRUE(without && *without);
  EXPECT_EQ(e.message.request_id, 5u);
  EXPECT_EQ(std::get<BlockInfo>(e.message.body), info);
  EXPECT_FALSE(e.fd.valid());
  ASSERT_TRUE(e.fd_lost);
  EXPECT_EQ(e.fd_lost->code, Errc::kSystem);
  EXPECT_THAT(e.fd_lost->message, HasSubstr("pool 'frames'"));
  EXPECT_TRUE(read_end_sees_eof(pipe_fds[0])) << "the dropped fd lives on somewhere";
  ::close(pipe_fds[0]);
}

// An Ok read without room for fds skips the general decoder, but not its
// rules: another version's Ok, or one with a payload, is refused as
// decode_reply refuses it.
TEST(Channel, OkIsCheckedLikeAnyReply) {
  Pair p = make_pair();
  auto ok = encode({.request_id = 8, .body = Ok{}});
  ASSERT_TRUE(ok);
  ASSERT_EQ(ok->size(), kHeaderSize);
  Envelope e;
  ASSERT_TRUE(os::send_message(p.daemon.get(), *ok, {}));
  auto good = receive_reply_into(p.client.get(), e, 0, false);
  ASSERT_TRUE(good && *good);
  EXPECT_EQ(e.message.request_id, 8u);
  EXPECT_TRUE(std::holds_alternative<Ok>(e.message.body));

  std::vector<std::byte> old = *ok;
  old[4] = std::byte{1};  // version 1
  old[5] = std::byte{0};
  ASSERT_TRUE(os::send_message(p.daemon.get(), old, {}));
  auto refused = receive_reply_into(p.client.get(), e, 0, false);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::kProtocol);
  EXPECT_THAT(refused.error().message, HasSubstr("protocol version 1"));

  std::vector<std::byte> longer = *ok;
  longer.push_back(std::byte{0});
  longer[12] = std::byte{1};  // payload_length 1
  ASSERT_TRUE(os::send_message(p.daemon.get(), longer, {}));
  auto trailing = receive_reply_into(p.client.get(), e, 0, false);
  ASSERT_FALSE(trailing);
  EXPECT_EQ(trailing.error().code, Errc::kProtocol);
}

// The SmallReply reader (libpmm's own replies): an Ok and a TokenReply land
// in the SmallReply with `out` untouched (its BlockInfo kept), each checked
// as decode_reply checks it; anything else, or a broken one, goes through
// the general decoder into `out` (or is refused by it) as before.
TEST(Channel, SmallRepliesAreReadBesideTheMessageAndCheckedLikeAnyReply) {
  Pair p = make_pair();
  const BlockInfo info{.block_id = 9,
                       .pool_index = 2,
                       .pool_name = "frames",
                       .offset = 4096,
                       .size = 4096,
                       .memory = {.type = PoolType::kShmem,
                                  .fd_attached = false,
                                  .pool_size = 1 << 20,
                                  .page_size = 4096,
                                  .shmid = -1}};
  const Token token = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  Envelope e;
  SmallReply small;
  ASSERT_TRUE(send(p.daemon.get(), {.request_id = 2, .body = info}));
  ASSERT_TRUE(send(p.daemon.get(), {.request_id = 3, .body = Ok{}}));
  ASSERT_TRUE(send(p.daemon.get(), {.request_id = 4, .body = TokenReply{.token = token}}));

  auto block = receive_reply_into(p.client.get(), e, 0, false, small);
  ASSERT_TRUE(block && *block);
  EXPECT_FALSE(small.set);
  EXPECT_EQ(e.message.request_id, 2u);
  EXPECT_EQ(std::get<BlockInfo>(e.message.body), info);

  auto ok = receive_reply_into(p.client.get(), e, 0, false, small);
  ASSERT_TRUE(ok && *ok);
  ASSERT_TRUE(small.set);
  EXPECT_EQ(small.type, MessageType::kOk);
  EXPECT_EQ(small.request_id, 3u);
  EXPECT_EQ(std::get<BlockInfo>(e.message.body), info) << "the Message was touched";

  auto tok = receive_reply_into(p.client.get(), e, 0, false, small);
  ASSERT_TRUE(tok && *tok);
  ASSERT_TRUE(small.set);
  EXPECT_EQ(small.type, MessageType::kToken);
  EXPECT_EQ(small.request_id, 4u);
  EXPECT_EQ(small.token, token);
  EXPECT_EQ(e.message.request_id, 2u);
  // As a Message, for a reader that needs one (a late reply to undo).
  small.into(e);
  EXPECT_EQ(e.message.request_id, 4u);
  EXPECT_EQ(std::get<TokenReply>(e.message.body).token, token);

  // Broken ones are the general decoder's to refuse: another version, a
  // header whose length is not the datagram's, a token cut short.
  auto encoded = encode({.request_id = 5, .body = TokenReply{.token = token}});
  ASSERT_TRUE(encoded);
  std::vector<std::byte> old = *encoded;
  old[4] = std::byte{1};  // version 1
  old[5] = std::byte{0};
  std::vector<std::byte> lying = *encoded;
  lying[12] = std::byte{15};  // payload_length 15 of 16
  std::vector<std::byte> cut = *encoded;
  cut.pop_back();
  cut[12] = std::byte{15};  // a 15-byte token
  for (const auto& bytes : {old, lying, cut}) {
    ASSERT_TRUE(os::send_message(p.daemon.get(), bytes, {}));
    auto refused = receive_reply_into(p.client.get(), e, 0, false, small);
    ASSERT_FALSE(refused);
    EXPECT_FALSE(small.set);
    EXPECT_EQ(refused.error().code, Errc::kProtocol) << refused.error().describe();
  }
}

// A FieldRequest sends what encoding the same body with the new value
// would: a u64 (Put's block id) and a token (Import's).
TEST(Channel, FieldRequestSendsTheEncodingWithItsFieldsPatched) {
  Pair p = make_pair();
  auto put = FieldRequest::make(Put{.block_id = FieldRequest::kU64Marker},
                                FieldRequest::u64(FieldRequest::kU64Marker));
  ASSERT_TRUE(put) << put.error().describe();
  for (uint64_t block : {uint64_t{1}, uint64_t{0x0102030405060708}, ~uint64_t{0}}) {
    ASSERT_TRUE(put->send(p.client.get(), 77, FieldRequest::u64(block)));
    auto in = receive_request(p.daemon.get());
    ASSERT_TRUE(in && *in) << (in ? "nothing" : in.error().describe());
    EXPECT_EQ((*in)->message.request_id, 77u);
    ASSERT_TRUE(std::holds_alternative<Put>((*in)->message.body));
    EXPECT_EQ(std::get<Put>((*in)->message.body).block_id, block);
  }
  auto import = FieldRequest::make(Import{.token = FieldRequest::kTokenMarker},
                                   FieldRequest::token(FieldRequest::kTokenMarker));
  ASSERT_TRUE(import) << import.error().describe();
  const Token t = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
  ASSERT_TRUE(import->send(p.client.get(), 0xfedcba98, FieldRequest::token(t)));
  auto in = receive_request(p.daemon.get());
  ASSERT_TRUE(in && *in);
  EXPECT_EQ((*in)->message.request_id, 0xfedcba98u);
  EXPECT_EQ(std::get<Import>((*in)->message.body).token, t);
  EXPECT_FALSE(import->send(p.client.get(), 1, FieldRequest::u64(1)));  // not its size

  auto no_field = FieldRequest::make(Ok{}, FieldRequest::u64(FieldRequest::kU64Marker));
  ASSERT_FALSE(no_field);
  EXPECT_EQ(no_field.error().code, Errc::kInvalidArgument);
}

TEST(Channel, SenderRefusesAMismatchedFd) {
  Pair p = make_pair();
  auto needs_fd =
      send(p.daemon.get(), {1, BlockInfo{.memory = {.fd_attached = true, .shmid = -1}}}, -1);
  ASSERT_FALSE(needs_fd);
  EXPECT_EQ(needs_fd.error().code, Errc::kInvalidArgument);
  auto no_fd = send(p.client.get(), {1, Get{.block_id = 1}}, 0);
  ASSERT_FALSE(no_fd);
  EXPECT_THAT(no_fd.error().message, HasSubstr("Get must carry 0 file descriptors, not 1"));
}

TEST(Channel, UnexpectedFdIsRefusedAndClosed) {
  Pair p = make_pair();
  auto bytes = encode({1, Get{.block_id = 1}});
  ASSERT_TRUE(bytes);
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  std::array<int, 1> fds{pipe_fds[1]};
  ASSERT_TRUE(os::send_message(p.client.get(), *bytes, fds));
  ::close(pipe_fds[1]);
  auto in = receive_request(p.daemon.get());
  ASSERT_FALSE(in);
  EXPECT_EQ(in.error().code, Errc::kProtocol);
  EXPECT_EQ(in.error().message, "Get came with 1 file descriptors; it must carry 0");
  EXPECT_TRUE(read_end_sees_eof(pipe_fds[0])) << "the refused fd was not closed";
  ::close(pipe_fds[0]);
}

TEST(Channel, UndecodableMessageWithFdIsRefusedAndClosed) {
  Pair p = make_pair();
  std::string junk = "definitely not a pmm message";
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  std::array<int, 1> fds{pipe_fds[1]};
  ASSERT_TRUE(os::send_message(
      p.daemon.get(), {reinterpret_cast<const std::byte*>(junk.data()), junk.size()}, fds));
  ::close(pipe_fds[1]);
  auto in = receive_reply(p.client.get());
  ASSERT_FALSE(in);
  EXPECT_EQ(in.error().code, Errc::kProtocol);
  EXPECT_THAT(in.error().message, HasSubstr("bad magic"));
  EXPECT_TRUE(read_end_sees_eof(pipe_fds[0]));
  ::close(pipe_fds[0]);
}

TEST(Channel, OversizeRequestAndWrongDirectionAreProtocolErrors) {
  Pair p = make_pair();
  std::vector<std::byte> big(kMaxRequestSize + 1);
  ASSERT_TRUE(os::send_message(p.client.get(), big, {}));
  auto in = receive_request(p.daemon.get());
  ASSERT_FALSE(in);
  EXPECT_EQ(in.error().code, Errc::kProtocol);
  EXPECT_THAT(in.error().message, HasSubstr("larger than 65536"));

  ASSERT_TRUE(send(p.client.get(), {1, Ok{}}));  // a reply sent as if a request
  auto wrong = receive_request(p.daemon.get());
  ASSERT_FALSE(wrong);
  EXPECT_THAT(wrong.error().message, HasSubstr("Ok is a reply"));

  // The channel stays usable after a refused message.
  ASSERT_TRUE(send(p.client.get(), {2, Put{.block_id = 4}}));
  auto next = receive_request(p.daemon.get());
  ASSERT_TRUE(next && *next);
  EXPECT_EQ((*next)->message.request_id, 2u);
}

// Messages land in a buffer of the largest size that is kept between
// receives and never cleared: a reply of exactly kMaxReplySize arrives
// whole and decodes, one byte more is refused as too large, and a small
// message received after the large one decodes from its own bytes only,
// not from what the large one left in the buffer.
TEST(Channel, AReplyOfExactlyTheLargestSizeDecodesAndOneByteMoreIsTooLarge) {
  Pair p = make_pair();
  Message m{.request_id = 7, .body = PoolList{}};
  auto& pools = std::get<PoolList>(m.body).pools;
  auto encoded_size = [&] {
    auto b = encode(m);
    EXPECT_TRUE(b) << b.error().describe();
    return b ? b->size() : 0;
  };
  for (;;) {
    pools.push_back(PoolInfo{.index = static_cast<uint32_t>(pools.size()),
                             .name = std::string(kMaxNameLength, 'p'),
                             .strategy = "tlsf"});
    const size_t size = encoded_size();
    if (size + kMaxTextLength >= kMaxReplySize) {
      pools.back().state = std::string(kMaxReplySize - size, 's');
      break;
    }
    pools.back().state = std::string(kMaxTextLength, 's');
  }
  ASSERT_EQ(encoded_size(), kMaxReplySize);
  ASSERT_TRUE(send(p.daemon.get(), m));
  auto in = receive_reply(p.client.get());
  ASSERT_TRUE(in) << in.error().describe();
  ASSERT_TRUE(*in);
  EXPECT_EQ((*in)->message, m);

  std::vector<std::byte> too_big(kMaxReplySize + 1, std::byte{0x50});
  ASSERT_TRUE(os::send_message(p.daemon.get(), too_big, {}));
  auto refused = receive_reply(p.client.get());
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, Errc::kProtocol);
  EXPECT_THAT(refused.error().message, HasSubstr("larger than 131072"));

  ASSERT_TRUE(send(p.daemon.get(), {8, Ok{}}));
  auto small = receive_reply(p.client.get());
  ASSERT_TRUE(small && *small);
  EXPECT_EQ((*small)->message, (Message{8, Ok{}}));
}

// The same on the request side, at kMaxRequestSize: exactly the limit
// reaches the decoder (which judges the bytes), one more does not.
TEST(Channel, ARequestOfExactlyTheLargestSizeReachesTheDecoder) {
  Pair p = make_pair();
  auto header = encode({.request_id = 3, .body = ListPools{}});
  ASSERT_TRUE(header);
  std::vector<std::byte> exact(kMaxRequestSize, std::byte{0});
  std::memcpy(exact.data(), header->data(), header->size());
  const uint32_t payload = kMaxRequestSize - kHeaderSize;
  std::memcpy(exact.data() + 12, &payload, sizeof payload);
  ASSERT_TRUE(os::send_message(p.client.get(), exact, {}));
  auto in = receive_request(p.daemon.get());
  ASSERT_FALSE(in);
  EXPECT_EQ(in.error().code, Errc::kProtocol);
  EXPECT_THAT(in.error().message, HasSubstr("ListPools"));  // the decoder's words
  EXPECT_THAT(in.error().message, testing::Not(HasSubstr("larger than")));

  exact.push_back(std::byte{0});
  ASSERT_TRUE(os::send_message(p.client.get(), exact, {}));
  auto over = receive_request(p.daemon.get());
  ASSERT_FALSE(over);
  EXPECT_THAT(over.error().message, HasSubstr("larger than 65536"));
}

TEST(Channel, PeerCloseIsDisconnected) {
  Pair p = make_pair();
  p.daemon.reset();
  auto in = receive_reply(p.client.get());
  ASSERT_FALSE(in);
  EXPECT_EQ(in.error().code, Errc::kDisconnected);
}

}  // namespace
}  // namespace pmm::proto
