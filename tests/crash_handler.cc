// Linked into the engine's test binaries: a test that crashes (a segfault
// in LibTorch, say, on a machine where nobody can attach a debugger) prints
// its stack before it dies. glibc's backtrace() unwinds by the DWARF tables,
// so frames of libraries built without frame pointers (LibTorch) show too;
// the names are mangled (pipe them through c++filt). The signal's default
// action follows, so ctest still sees the crash.
#include <execinfo.h>
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <initializer_list>

namespace {

void PrintStackAndDie(int signal) {
  const char* name = signal == SIGSEGV  ? "SIGSEGV"
                     : signal == SIGBUS ? "SIGBUS"
                     : signal == SIGILL ? "SIGILL"
                     : signal == SIGFPE ? "SIGFPE"
                                        : "SIGABRT";
  const char* head = "\n*** crashed with ";
  const char* tail = "; its stack:\n";
  (void)!write(STDERR_FILENO, head, std::strlen(head));
  (void)!write(STDERR_FILENO, name, std::strlen(name));
  (void)!write(STDERR_FILENO, tail, std::strlen(tail));
  void* frames[64];
  backtrace_symbols_fd(frames, backtrace(frames, 64), STDERR_FILENO);
  raise(signal);  // SA_RESETHAND restored the default action.
}

const bool kInstalled = [] {
  void* warm[1];
  backtrace(warm, 1);  // Loads the unwinder now, not in the handler.
  struct sigaction action = {};
  action.sa_handler = PrintStackAndDie;
  action.sa_flags = SA_RESETHAND;
  for (int signal : {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT}) {
    sigaction(signal, &action, nullptr);
  }
  return true;
}();

}  // namespace
