#include "test/support/process.h"

#include <algorithm>

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>

extern char** environ;

namespace orrery::testing {

std::unique_ptr<Process> Process::Spawn(std::vector<std::string> argv, std::vector<std::string> env,
                                        const std::filesystem::path& cwd) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) {
    std::perror("pipe2");
    std::abort();
  }
  // The given entries replace the parent's of the same name (getenv takes the first match).
  auto name_of = [](std::string_view kv) { return kv.substr(0, kv.find('=')); };
  std::vector<std::string> envs;
  for (char** e = environ; *e; ++e) {
    std::string_view kv(*e);
    bool overridden = std::any_of(env.begin(), env.end(),
                                  [&](const std::string& o) { return name_of(o) == name_of(kv); });
    if (!overridden) envs.emplace_back(kv);
  }
  for (auto& e : env)
    envs.push_back(e);
  std::vector<char*> cargv, cenv;
  for (auto& a : argv)
    cargv.push_back(a.data());
  cargv.push_back(nullptr);
  for (auto& e : envs)
    cenv.push_back(e.data());
  cenv.push_back(nullptr);

  pid_t pid = ::fork();
  if (pid < 0) {
    std::perror("fork");
    std::abort();
  }
  if (pid == 0) {
    ::setpgid(0, 0);
    ::dup2(pipefd[1], 1);
    ::dup2(pipefd[1], 2);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    if (!cwd.empty() && ::chdir(cwd.c_str()) != 0) _exit(126);
    ::execvpe(cargv[0], cargv.data(), cenv.data());
    std::fprintf(stderr, "exec %s: %s\n", cargv[0], std::strerror(errno));
    _exit(127);
  }
  ::close(pipefd[1]);
  std::unique_ptr<Process> p(new Process());
  p->pid_ = pid;
  p->out_fd_ = pipefd[0];
  p->pid_fd_ = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  return p;
}

Process::~Process() {
  if (!exit_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    Wait(std::chrono::seconds(10));
  }
  if (out_fd_ >= 0) ::close(out_fd_);
  if (pid_fd_ >= 0) ::close(pid_fd_);
}

bool Process::ReadSome(std::chrono::milliseconds timeout) {
  if (out_fd_ < 0) return false;
  pollfd pfd{out_fd_, POLLIN, 0};
  int rc = ::poll(&pfd, 1, static_cast<int>(timeout.count()));
  if (rc <= 0) return false;
  char buf[8192];
  ssize_t n = ::read(out_fd_, buf, sizeof buf);
  if (n <= 0) {
    ::close(out_fd_);
    out_fd_ = -1;
    return false;
  }
  output_.append(buf, static_cast<size_t>(n));
  return true;
}

bool Process::WaitForOutput(std::string_view needle, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t scanned = 0;
  while (true) {
    size_t from = scanned > needle.size() ? scanned - needle.size() : 0;
    if (output_.find(needle, from) != std::string::npos) return true;
    scanned = output_.size();
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || out_fd_ < 0) return false;
    ReadSome(left);
  }
}

void Process::Drain(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (out_fd_ >= 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (!ReadSome(std::max(left, std::chrono::milliseconds(0)))) break;
  }
}

void Process::Signal(int sig) {
  if (!exit_ && pid_ > 0) ::kill(pid_, sig);
}

std::optional<int> Process::Wait(std::chrono::milliseconds timeout) {
  if (exit_) return exit_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      Drain(std::chrono::milliseconds(200));
      return exit_;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    // Keep reading output so a chatty child never blocks on a full pipe; wake on exit.
    pollfd pfds[2] = {{pid_fd_, POLLIN, 0}, {out_fd_, POLLIN, 0}};
    int n = out_fd_ >= 0 ? 2 : 1;
    ::poll(pfds, static_cast<nfds_t>(n), static_cast<int>(left.count()));
    if (n == 2 && (pfds[1].revents & (POLLIN | POLLHUP))) ReadSome(std::chrono::milliseconds(0));
  }
}

uint16_t FreePort() {
  // Ports come from below the kernel's ephemeral range (32768-60999 on Debian), never from
  // it: a port handed out by bind(0) is next in line for some parallel test's outgoing
  // connection, which then holds it as its local port when our server tries to listen
  // (seen in CI as "Address already in use"). A per-process random walk keeps concurrent
  // test processes apart; the bind check skips ports somebody is already listening on.
  static std::mutex mu;
  static std::mt19937 rng(static_cast<uint32_t>(::getpid()) * 2654435761u ^
                          static_cast<uint32_t>(std::random_device{}()));
  std::lock_guard lock(mu);
  std::uniform_int_distribution<int> dist(20000, 32000);
  for (int attempt = 0; attempt < 200; ++attempt) {
    auto port = static_cast<uint16_t>(dist(rng));
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(port);
    bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
    ::close(fd);
    if (free) return port;
  }
  std::fprintf(stderr, "FreePort: no free port in 20000-32000 after 200 tries\n");
  std::abort();
}

TempDir::TempDir(std::string_view name) {
  static std::atomic<int> counter{0};
  path_ = std::filesystem::temp_directory_path() /
          ("orrery-" + std::string(name) + "-" + std::to_string(::getpid()) + "-" +
           std::to_string(counter++));
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string OrreryBinary() {
  const char* b = std::getenv("ORRERY_BINARY");
  return b ? b : "orrery";
}

size_t LineCount(std::string_view text) {
  size_t n = 0;
  for (char c : text)
    n += c == '\n';
  if (!text.empty() && text.back() != '\n') ++n;
  return n;
}

}  // namespace orrery::testing
