#include "http/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/log.h"
#include "common/task_pool.h"

namespace distill {

std::string PeerGroup(const std::string& host) {
  in6_addr v6{};
  if (::inet_pton(AF_INET6, host.c_str(), &v6) != 1) return host;  // IPv4.
  if (IN6_IS_ADDR_V4MAPPED(&v6)) {
    char v4[INET_ADDRSTRLEN] = "";
    ::inet_ntop(AF_INET, &v6.s6_addr[12], v4, sizeof v4);
    return v4;
  }
  std::fill(v6.s6_addr + 8, v6.s6_addr + 16, 0);
  char prefix[INET6_ADDRSTRLEN] = "";
  ::inet_ntop(AF_INET6, &v6, prefix, sizeof prefix);
  return absl::StrCat(prefix, "/64");
}

// The event loop: every connection's reads, writes, TLS and deadlines on
// one thread; whole requests to the handler's pool; its answers back
// through an eventfd.
class HttpServer::Loop {
 public:
  Loop(const HttpServerOptions& options, Handler handler,
       std::atomic<int64_t>* refused)
      : options_(options), handler_(std::move(handler)), refused_(refused) {}

  ~Loop() {
    pool_.reset();  // Handlers still running finish; their answers are dropped.
    for (auto& [id, c] : connections_) CloseSocket(*c);
    if (listen_fd_ >= 0) ::close(listen_fd_);
    if (wake_fd_ >= 0) ::close(wake_fd_);
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
    if (tls_ != nullptr) SSL_CTX_free(tls_);
  }

  // Binds and prepares; returns the port.
  absl::StatusOr<int> Open() {
    if (!options_.tls_cert.empty() || !options_.tls_key.empty()) {
      if (absl::Status s = OpenTls(); !s.ok()) return s;
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string port = absl::StrCat(options_.port);
    if (::getaddrinfo(options_.host.c_str(), port.c_str(), &hints, &found) !=
            0 ||
        found == nullptr) {
      return absl::UnavailableError(
          absl::StrCat("cannot resolve \"", options_.host, "\""));
    }
    listen_fd_ = ::socket(found->ai_family,
                          found->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    const int one = 1;
    const bool bound =
        listen_fd_ >= 0 &&
        ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ==
            0 &&
        ::bind(listen_fd_, found->ai_addr, found->ai_addrlen) == 0 &&
        ::listen(listen_fd_, 256) == 0;
    const int error = errno;
    ::freeaddrinfo(found);
    if (!bound) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on ", options_.host, ":", options_.port,
                       ": ", std::strerror(error)));
    }
    sockaddr_storage address{};
    socklen_t length = sizeof address;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
    const int bound_port =
        address.ss_family == AF_INET6
            ? ntohs(reinterpret_cast<sockaddr_in6*>(&address)->sin6_port)
            : ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port);
    epoll_fd_ = ::epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epoll_fd_ < 0 || wake_fd_ < 0) {
      return absl::UnavailableError("cannot create the pages' event loop");
    }
    Add(listen_fd_, kListenId, EPOLLIN);
    Add(wake_fd_, kWakeId, EPOLLIN);
    pool_ = std::make_unique<TaskPool>(options_.handler_threads);
    return bound_port;
  }

  void Run() {
    std::vector<epoll_event> events(64);
    while (!stopping_.load()) {
      const int n = ::epoll_wait(epoll_fd_, events.data(), int(events.size()),
                                 WaitMillis());
      if (n < 0 && errno != EINTR) {
        DISTILL_LOG(ERROR) << "pages: epoll_wait: " << std::strerror(errno);
        return;
      }
      for (int i = 0; i < n; ++i) {
        const uint64_t id = events[i].data.u64;
        if (id == kListenId) {
          Accept();
        } else if (id == kWakeId) {
          uint64_t ignored;
          while (::read(wake_fd_, &ignored, sizeof ignored) > 0) {
          }
          TakeFinished();
        } else if (auto it = connections_.find(id); it != connections_.end()) {
          Step(*it->second, events[i].events);
        }
      }
      ExpireDeadlines();
    }
  }

  void Stop() {
    stopping_ = true;
    Wake();
  }

 private:
  static constexpr uint64_t kListenId = 0;
  static constexpr uint64_t kWakeId = 1;

  enum class Phase { kHandshake, kReading, kHandling, kWriting, kLingering };

  struct Connection {
    uint64_t id = 0;
    int fd = -1;
    SSL* ssl = nullptr;
    std::string peer;
    std::string group;  // PeerGroup(peer): what the per-address cap counts.
    Phase phase = Phase::kReading;
    std::string in;
    std::string out;
    size_t written = 0;
    absl::Time deadline;
    bool waiting_for_first_byte = true;
    bool body_deadline_set = false;
    bool close_after_write = false;
    bool eof = false;  // The client shut its side.
    int requests = 0;
    uint32_t watching = 0;
  };

  absl::Status OpenTls() {
    tls_ = SSL_CTX_new(TLS_server_method());
    if (tls_ == nullptr) return absl::InternalError("cannot start TLS");
    SSL_CTX_set_min_proto_version(tls_, TLS1_2_VERSION);
    SSL_CTX_set_mode(tls_, SSL_MODE_ENABLE_PARTIAL_WRITE |
                               SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (SSL_CTX_use_certificate_chain_file(tls_, options_.tls_cert.c_str()) !=
        1) {
      ERR_clear_error();
      return absl::InvalidArgumentError(
          absl::StrCat("cannot read the TLS certificate ", options_.tls_cert,
                       " for the pages"));
    }
    if (SSL_CTX_use_PrivateKey_file(tls_, options_.tls_key.c_str(),
                                    SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(tls_) != 1) {
      ERR_clear_error();
      return absl::InvalidArgumentError(absl::StrCat(
          "cannot read the TLS key ", options_.tls_key,
          " for the pages (or it does not match ", options_.tls_cert, ")"));
    }
    // OpenSSL writes to the socket with write(): a peer gone would raise
    // SIGPIPE, which must not end the coordinator.
    ::signal(SIGPIPE, SIG_IGN);
    return absl::OkStatus();
  }

  void Add(int fd, uint64_t id, uint32_t events) {
    epoll_event e{};
    e.events = events;
    e.data.u64 = id;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &e);
  }

  void Watch(Connection& c, uint32_t events) {
    if (c.watching == events) return;
    epoll_event e{};
    e.events = events;
    e.data.u64 = c.id;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &e);
    c.watching = events;
  }

  void Wake() {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd_, &one, sizeof one);
  }

  int WaitMillis() const {
    absl::Time next = absl::Now() + absl::Seconds(1);
    for (const auto& [id, c] : connections_) next = std::min(next, c->deadline);
    return int(std::max<int64_t>(
        0, absl::ToInt64Milliseconds(next - absl::Now()) + 1));
  }

  static std::string PeerAddress(const sockaddr_storage& address,
                                 socklen_t length) {
    char host[NI_MAXHOST] = "";
    if (::getnameinfo(reinterpret_cast<const sockaddr*>(&address), length, host,
                      sizeof host, nullptr, 0, NI_NUMERICHOST) != 0) {
      return "unknown";
    }
    return host;
  }

  void Accept() {
    while (true) {
      sockaddr_storage address{};
      socklen_t length = sizeof address;
      const int fd =
          ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length,
                    SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        return;  // EAGAIN, or out of descriptors: the next event tries again.
      }
      std::string peer = PeerAddress(address, length);
      std::string group = PeerGroup(peer);
      int& open = per_address_[group];
      if (open >= options_.max_connections_per_address ||
          int(connections_.size()) >= options_.max_connections) {
        Refuse(fd, group, open >= options_.max_connections_per_address);
        if (open == 0) per_address_.erase(group);
        continue;
      }
      ++open;
      auto c = std::make_unique<Connection>();
      c->id = next_id_++;
      c->fd = fd;
      c->peer = std::move(peer);
      c->group = std::move(group);
      c->deadline = absl::Now() + options_.header_timeout;
      c->watching = EPOLLIN;
      if (tls_ != nullptr) {
        c->ssl = SSL_new(tls_);
        SSL_set_fd(c->ssl, fd);
        SSL_set_accept_state(c->ssl);
        c->phase = Phase::kHandshake;
      }
      Add(fd, c->id, EPOLLIN);
      connections_.emplace(c->id, std::move(c));
    }
  }

  // Past a cap: a short answer where the connection speaks plain HTTP,
  // then closed at once.
  void Refuse(int fd, const std::string& peer, bool per_address) {
    refused_->fetch_add(1);
    if (tls_ == nullptr) {
      HttpResponse busy;
      busy.status = 503;
      busy.content_type = "text/plain; charset=utf-8";
      busy.headers.emplace_back("Retry-After", "1");
      busy.body = per_address
                      ? absl::StrCat(
                            "too many connections from ", peer, " (at most ",
                            options_.max_connections_per_address, " at once)\n")
                      : "too many connections\n";
      const std::string bytes = SerializeHttpResponse(busy, false, false);
      [[maybe_unused]] ssize_t n =
          ::send(fd, bytes.data(), bytes.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    }
    ::close(fd);
  }

  void Step(Connection& c, uint32_t events) {
    // Gone (a handler's answer for it is then dropped); a write reports
    // its own error.
    if ((events & (EPOLLERR | EPOLLHUP)) && c.phase != Phase::kWriting) {
      Close(c.id);
      return;
    }
    switch (c.phase) {
      case Phase::kHandshake:
        Handshake(c);
        return;
      case Phase::kReading:
        Read(c);
        return;
      case Phase::kHandling:
        return;
      case Phase::kWriting:
        Write(c);
        return;
      case Phase::kLingering:
        Linger(c);
        return;
    }
  }

  // What an SSL call that did not finish waits for; false when it failed.
  bool WaitForTls(Connection& c, int result) {
    switch (SSL_get_error(c.ssl, result)) {
      case SSL_ERROR_WANT_READ:
        Watch(c, EPOLLIN);
        return true;
      case SSL_ERROR_WANT_WRITE:
        Watch(c, EPOLLOUT);
        return true;
      default:
        ERR_clear_error();
        return false;
    }
  }

  void Handshake(Connection& c) {
    const int r = SSL_do_handshake(c.ssl);
    if (r == 1) {
      c.phase = Phase::kReading;
      Watch(c, EPOLLIN);
      Read(c);  // Its request may have come with the handshake's end.
      return;
    }
    if (!WaitForTls(c, r)) Close(c.id);
  }

  void Read(Connection& c) {
    const size_t bound =
        options_.limits.max_head_bytes + options_.limits.max_body_bytes + 4;
    char buffer[16384];
    while (c.in.size() <= bound) {
      ssize_t n;
      if (c.ssl != nullptr) {
        n = SSL_read(c.ssl, buffer, sizeof buffer);
        if (n <= 0) {
          if (!WaitForTls(c, int(n))) return Close(c.id);
          break;
        }
      } else {
        n = ::recv(c.fd, buffer, sizeof buffer, 0);
        if (n == 0) {  // The client sent all it will: answer what is whole.
          c.eof = true;
          break;
        }
        if (n < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK) break;
          return Close(c.id);
        }
      }
      if (c.waiting_for_first_byte) {
        // A keep-alive connection's next request: its own header deadline.
        c.waiting_for_first_byte = false;
        if (c.requests > 0) c.deadline = absl::Now() + options_.header_timeout;
      }
      c.in.append(buffer, size_t(n));
    }
    Parse(c);
  }

  void Parse(Connection& c) {
    HttpRequest request;
    const HttpParse parse = ParseHttpRequest(c.in, options_.limits, &request);
    switch (parse.state) {
      case HttpParse::kIncomplete:
        if (c.eof) return Close(c.id);
        if (parse.head_complete && !c.body_deadline_set) {
          c.body_deadline_set = true;
          c.deadline = absl::Now() + options_.body_timeout;
        }
        return;
      case HttpParse::kBad: {
        HttpResponse error;
        error.status = parse.error_status;
        error.content_type = "text/plain; charset=utf-8";
        error.body = absl::StrCat(parse.error, "\n");
        Answer(c, SerializeHttpResponse(error, false, false), false);
        return;
      }
      case HttpParse::kComplete:
        break;
    }
    c.in.erase(0, parse.consumed);
    ++c.requests;
    const std::string connection =
        absl::AsciiStrToLower(request.Header("connection"));
    const bool keep_alive =
        !c.eof && c.requests < options_.max_requests_per_connection &&
        (request.http10 ? connection == "keep-alive" : connection != "close");
    request.peer = c.peer;
    request.tls = c.ssl != nullptr;
    c.phase = Phase::kHandling;
    c.deadline = absl::InfiniteFuture();
    Watch(c, 0);
    pool_->Schedule(
        [this, id = c.id, keep_alive, request = std::move(request)] {
          std::string bytes = Respond(request, keep_alive);
          {
            absl::MutexLock lock(&finished_mu_);
            finished_.push_back({id, std::move(bytes), keep_alive});
          }
          Wake();
        });
  }

  // The handler's answer as bytes; whatever the handler or the
  // serializer throws (an exception of any type) is a 500, logged, and
  // never leaves the pool's thread.
  std::string Respond(const HttpRequest& request, bool keep_alive) {
    const bool head = request.method == "HEAD";
    try {
      return SerializeHttpResponse(handler_(request), keep_alive, head);
    } catch (const std::exception& e) {
      DISTILL_LOG(ERROR) << "a bug, caught at the edge of a page request: "
                         << e.what();
    } catch (...) {
      DISTILL_LOG(ERROR) << "a bug, caught at the edge of a page request: "
                            "an exception that is no std::exception";
    }
    HttpResponse error;
    error.status = 500;
    error.content_type = "text/plain; charset=utf-8";
    error.body = "internal error\n";
    return SerializeHttpResponse(error, keep_alive, head);
  }

  struct Finished {
    uint64_t id;
    std::string bytes;
    bool keep_alive;
  };

  void TakeFinished() {
    std::vector<Finished> done;
    {
      absl::MutexLock lock(&finished_mu_);
      done.swap(finished_);
    }
    for (Finished& f : done) {
      auto it = connections_.find(f.id);
      if (it == connections_.end()) continue;  // Closed meanwhile.
      Answer(*it->second, std::move(f.bytes), f.keep_alive);
    }
  }

  void Answer(Connection& c, std::string bytes, bool keep_alive) {
    c.out = std::move(bytes);
    c.written = 0;
    c.close_after_write = !keep_alive;
    c.phase = Phase::kWriting;
    c.deadline = absl::Now() + options_.write_timeout;
    Watch(c, EPOLLOUT);
    Write(c);
  }

  void Write(Connection& c) {
    while (c.written < c.out.size()) {
      const char* data = c.out.data() + c.written;
      const size_t left = c.out.size() - c.written;
      ssize_t n;
      if (c.ssl != nullptr) {
        n = SSL_write(c.ssl, data, int(std::min<size_t>(left, 1 << 30)));
        if (n <= 0) {
          if (!WaitForTls(c, int(n))) return Close(c.id);
          return;
        }
      } else {
        n = ::send(c.fd, data, left, MSG_NOSIGNAL);
        if (n < 0) {
          if (errno == EINTR) continue;
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            return Watch(c, EPOLLOUT);
          return Close(c.id);
        }
      }
      c.written += size_t(n);
    }
    c.out.clear();
    c.written = 0;
    if (c.close_after_write) return StartLingering(c);
    // The next request of a keep-alive connection.
    c.phase = Phase::kReading;
    c.deadline = absl::Now() + options_.idle_timeout;
    c.waiting_for_first_byte = c.in.empty();
    c.body_deadline_set = false;
    Watch(c, EPOLLIN);
    if (!c.in.empty()) Parse(c);  // Pipelined.
  }

  // After the last response: no more writes, and what the client still
  // sends is read and dropped for a moment, so that closing does not reset
  // the connection before the client has read the answer.
  void StartLingering(Connection& c) {
    if (c.ssl != nullptr) {
      SSL_shutdown(c.ssl);
      ERR_clear_error();
      return Close(c.id);
    }
    ::shutdown(c.fd, SHUT_WR);
    c.phase = Phase::kLingering;
    c.deadline = absl::Now() + absl::Seconds(2);
    Watch(c, EPOLLIN);
    Linger(c);
  }

  void Linger(Connection& c) {
    char buffer[4096];
    while (true) {
      const ssize_t n = ::recv(c.fd, buffer, sizeof buffer, 0);
      if (n > 0) continue;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      return Close(c.id);
    }
  }

  void ExpireDeadlines() {
    const absl::Time now = absl::Now();
    std::vector<uint64_t> late;
    for (const auto& [id, c] : connections_) {
      if (c->deadline <= now) late.push_back(id);
    }
    for (uint64_t id : late) Close(id);
  }

  void CloseSocket(Connection& c) {
    if (c.ssl != nullptr) SSL_free(c.ssl);
    c.ssl = nullptr;
    if (c.fd >= 0) ::close(c.fd);
    c.fd = -1;
  }

  void Close(uint64_t id) {
    auto it = connections_.find(id);
    if (it == connections_.end()) return;
    Connection& c = *it->second;
    ::epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
    if (auto open = per_address_.find(c.group);
        open != per_address_.end() && --open->second <= 0) {
      per_address_.erase(open);
    }
    CloseSocket(c);
    connections_.erase(it);
  }

  const HttpServerOptions options_;
  const Handler handler_;
  std::atomic<int64_t>* const refused_;
  std::atomic<bool> stopping_{false};
  SSL_CTX* tls_ = nullptr;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  uint64_t next_id_ = 2;
  // The loop thread's alone.
  std::map<uint64_t, std::unique_ptr<Connection>> connections_;
  absl::flat_hash_map<std::string, int> per_address_;
  absl::Mutex finished_mu_;
  std::vector<Finished> finished_ ABSL_GUARDED_BY(finished_mu_);
  std::unique_ptr<TaskPool> pool_;
};

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    const HttpServerOptions& options, Handler handler) {
  std::unique_ptr<HttpServer> server(new HttpServer());
  server->loop_ =
      std::make_unique<Loop>(options, std::move(handler), &server->refused_);
  absl::StatusOr<int> port = server->loop_->Open();
  if (!port.ok()) return port.status();
  server->port_ = *port;
  server->thread_ = std::thread([loop = server->loop_.get()] { loop->Run(); });
  return server;
}

HttpServer::~HttpServer() {
  if (loop_ != nullptr) loop_->Stop();
  if (thread_.joinable()) thread_.join();
  loop_.reset();
}

}  // namespace distill
