// The bench's watchers, compiled: N watch streams of one method on one channel,
// counting the events each receives without decoding them.
//
//   watchers PORT COUNT METHOD REQUEST_HEX
//
// METHOD is the full method name (/footfall.console.v1.ConsoleService/...);
// REQUEST_HEX the serialized request, made by the caller (so no generated code is
// needed here). A message of WatchUserEventBatches is counted by its field-1
// elements (a UserEventBatch's list), any other method's as one event.
// The protocol of bench/watch.py's Python watchers: a line "count" on stdin answers
// one line of every stream's count; end of input cancels the streams and exits 0.
// A stream that ends before that is reported on stderr (its count stops).

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace {

const char kBatches[] = "/footfall.console.v1.ConsoleService/WatchUserEventBatches";

// The varint at data[*at] into *value, *at moved past it; false if it runs past `end`.
bool ReadVarint(const uint8_t* data, size_t end, size_t* at, uint64_t* value) {
  *value = 0;
  for (int shift = 0; shift < 64 && *at < end; shift += 7) {
    uint8_t byte = data[(*at)++];
    *value |= static_cast<uint64_t>(byte & 0x7F) << shift;
    if (!(byte & 0x80)) return true;
  }
  return false;
}

// The field-1 elements of a message's top level; -1 if it is not well formed.
long CountFieldOne(const uint8_t* data, size_t size) {
  long count = 0;
  size_t at = 0;
  while (at < size) {
    uint64_t tag, length;
    if (!ReadVarint(data, size, &at, &tag)) return -1;
    switch (tag & 7) {
      case 0:
        if (!ReadVarint(data, size, &at, &length)) return -1;
        break;
      case 1:
        at += 8;
        break;
      case 2:
        if (!ReadVarint(data, size, &at, &length) || length > size - at) return -1;
        at += length;
        break;
      case 5:
        at += 4;
        break;
      default:
        return -1;
    }
    if (at > size) return -1;
    if (tag >> 3 == 1) ++count;
  }
  return count;
}

long CountEvents(const grpc::ByteBuffer& message, bool batches) {
  if (!batches) return 1;
  grpc::Slice slice;
  if (!message.TrySingleSlice(&slice).ok() && !message.DumpToSingleSlice(&slice).ok()) return -1;
  return CountFieldOne(slice.begin(), slice.size());
}

// One stream's state: its steps follow one another on the completion queue.
struct Stream {
  enum Step { kStarted, kWritten, kClosed, kRead, kFinished };
  struct Tag {
    Stream* stream;
    Step step;
  };

  int index = 0;
  grpc::ClientContext context;
  std::unique_ptr<grpc::GenericClientAsyncReaderWriter> call;
  grpc::ByteBuffer message;
  grpc::Status status;
  Tag tags[5];
  std::atomic<long> count{0};
  std::atomic<bool> finished{false};

  void* tag(Step step) {
    tags[step] = {this, step};
    return &tags[step];
  }
};

void Follow(grpc::CompletionQueue* queue, const grpc::ByteBuffer& request, bool batches,
            std::atomic<bool>* cancelled, std::atomic<int>* running,
            std::atomic<bool>* shut) {
  void* got;
  bool ok;
  while (queue->Next(&got, &ok)) {
    auto* tag = static_cast<Stream::Tag*>(got);
    Stream* stream = tag->stream;
    switch (tag->step) {
      case Stream::kStarted:
        if (!ok) {
          stream->call->Finish(&stream->status, stream->tag(Stream::kFinished));
          break;
        }
        stream->call->Write(request, stream->tag(Stream::kWritten));
        break;
      case Stream::kWritten:
        stream->call->WritesDone(stream->tag(Stream::kClosed));
        break;
      case Stream::kClosed:
        stream->call->Read(&stream->message, stream->tag(Stream::kRead));
        break;
      case Stream::kRead: {
        if (!ok) {
          stream->call->Finish(&stream->status, stream->tag(Stream::kFinished));
          break;
        }
        long events = CountEvents(stream->message, batches);
        if (events < 0) {
          std::cerr << "watcher " << stream->index << ": a message that is not a batch\n";
          std::exit(2);
        }
        stream->count.fetch_add(events, std::memory_order_relaxed);
        stream->call->Read(&stream->message, stream->tag(Stream::kRead));
        break;
      }
      case Stream::kFinished:
        if (!cancelled->load()) {
          std::cerr << "watcher " << stream->index << " ended: "
                    << stream->status.error_code() << " " << stream->status.error_message()
                    << "\n";
        }
        stream->finished = true;
        if (running->fetch_sub(1) == 1 && cancelled->load() && !shut->exchange(true)) {
          queue->Shutdown();
        }
        break;
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::cerr << "usage: watchers PORT COUNT METHOD REQUEST_HEX\n";
    return 64;
  }
  const std::string target = std::string("127.0.0.1:") + argv[1];
  const int count = std::atoi(argv[2]);
  const std::string method = argv[3];
  const std::string hex = argv[4];
  std::string bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  grpc::Slice slice(bytes);
  const grpc::ByteBuffer request(&slice, 1);
  const bool batches = method == kBatches;

  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue queue;
  std::vector<std::unique_ptr<Stream>> streams;
  std::atomic<bool> cancelled{false};
  std::atomic<int> running{count};
  std::atomic<bool> shut{false};  // the queue shut down (once, by whichever sees the end)
  for (int k = 0; k < count; ++k) {
    streams.push_back(std::make_unique<Stream>());
    Stream* stream = streams.back().get();
    stream->index = k;
    stream->call = stub.PrepareCall(&stream->context, method, &queue);
    stream->call->StartCall(stream->tag(Stream::kStarted));
  }
  std::thread follower(Follow, &queue, std::cref(request), batches, &cancelled, &running,
                       &shut);

  std::string line;
  while (std::getline(std::cin, line)) {
    if (line != "count") continue;
    std::string counts;
    for (const auto& stream : streams) {
      if (!counts.empty()) counts += ' ';
      counts += std::to_string(stream->count.load(std::memory_order_relaxed));
    }
    std::cout << counts << std::endl;  // flushed: the caller waits for the line
  }
  cancelled = true;
  for (const auto& stream : streams) stream->context.TryCancel();
  if (running.load() == 0 && !shut.exchange(true)) queue.Shutdown();
  follower.join();
  return 0;
}
