#pragma once
// Headless Chromium (Debian's `chromium`) driven over its DevTools pipe, for tests that check what a browser
// makes of a page triad wrote. One browser loads several pages: `--dump-dom` and `--screenshot` take one URL
// per process, and a Chromium start costs seconds. With --remote-debugging-pipe the browser reads JSON
// commands ending in NUL from fd 3 and writes replies and events to fd 4. Per page: the DOM after the load
// event, a screenshot, and every URL the page asked the network for (Network.requestWillBeSent of the
// page's own session; Chromium's background services are other sessions and are not counted).

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <deque>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "triad/governance/encoding.h"

namespace triad::testing {

class HeadlessChromium {
 public:
  // The chromium binary on PATH, or "" when there is none.
  static std::string binary() {
    const char* path = std::getenv("PATH");
    std::string dirs = path ? path : "/usr/bin:/bin";
    for (size_t start = 0; start <= dirs.size();) {
      size_t end = dirs.find(':', start);
      if (end == std::string::npos) end = dirs.size();
      const std::string candidate = dirs.substr(start, end - start) + "/chromium";
      if (access(candidate.c_str(), X_OK) == 0) return candidate;
      start = end + 1;
    }
    return "";
  }

  // Starts the browser with its profile in `profile_dir`; nothing it could resolve a host name with.
  explicit HeadlessChromium(const std::string& profile_dir) {
    int to[2], from[2];  // sockets, not pipes: send(MSG_NOSIGNAL) to a dead browser fails instead of SIGPIPE
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, to) != 0 ||
        socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, from) != 0)
      throw std::runtime_error("socketpair failed");
    const std::string chromium = binary(), profile = "--user-data-dir=" + profile_dir;
    pid_ = fork();
    if (pid_ == 0) {
      // Out of the way of 3 and 4 first (either may be one of them); dup2's copies lose close-on-exec.
      const int commands = fcntl(to[1], F_DUPFD, 10), replies = fcntl(from[1], F_DUPFD, 10);
      dup2(commands, 3);
      dup2(replies, 4);
      int null = open("/dev/null", O_WRONLY);
      dup2(null, 1);
      dup2(null, 2);
      execl(chromium.c_str(), "chromium", "--headless", "--no-sandbox", "--disable-gpu",
            "--remote-debugging-pipe", "--host-resolver-rules=MAP * ~NOTFOUND",
            "--disable-background-networking", "--no-first-run", "--window-size=1000,1200", profile.c_str(),
            "about:blank", static_cast<char*>(nullptr));
      _exit(127);
    }
    close(to[1]);
    close(from[1]);
    to_browser_ = to[0];
    from_browser_ = from[0];
    if (pid_ < 0) throw std::runtime_error("fork failed");
  }

  ~HeadlessChromium() {
    try {
      send("Browser.close", nlohmann::json::object(), "");
    } catch (const std::exception&) {
    }
    close(to_browser_);
    close(from_browser_);
    for (int i = 0; i < 100; ++i) {
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) return;
      usleep(50000);
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }

  struct Page {
    std::string dom;                    // document.documentElement.outerHTML once loaded
    std::string screenshot_png;         // the viewport as PNG bytes
    std::vector<std::string> requests;  // every URL the page asked for, the page's own file:// included
  };

  Page load(const std::string& url) {
    const std::string target = call("Target.createTarget", {{"url", "about:blank"}})["targetId"];
    const std::string session =
        call("Target.attachToTarget", {{"targetId", target}, {"flatten", true}})["sessionId"];
    call("Network.enable", nlohmann::json::object(), session);
    call("Page.enable", nlohmann::json::object(), session);
    const nlohmann::json navigated = call("Page.navigate", {{"url", url}}, session);
    if (navigated.contains("errorText")) throw std::runtime_error(url + ": " + navigated["errorText"].dump());
    wait_event("Page.loadEventFired", session);
    Page page;
    page.dom = call("Runtime.evaluate",
                    {{"expression", "document.documentElement.outerHTML"}, {"returnByValue", true}},
                    session)["result"]["value"];
    auto png = base64_decode(
        call("Page.captureScreenshot", {{"format", "png"}}, session)["data"].get<std::string>());
    page.screenshot_png = png ? *png : "";
    call("Target.closeTarget", {{"targetId", target}});
    for (const nlohmann::json& e : events_) {
      if (e.value("sessionId", "") == session && e.value("method", "") == "Network.requestWillBeSent")
        page.requests.push_back(e["params"]["request"].value("url", ""));
    }
    events_.clear();
    return page;
  }

 private:
  static constexpr int kTimeoutMs = 30000;

  int send(const std::string& method, const nlohmann::json& params, const std::string& session) {
    nlohmann::json message = {{"id", ++last_id_}, {"method", method}, {"params", params}};
    if (!session.empty()) message["sessionId"] = session;
    const std::string text = message.dump() + '\0';
    for (size_t sent = 0; sent < text.size();) {
      ssize_t n = ::send(to_browser_, text.data() + sent, text.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) throw std::runtime_error("chromium: the DevTools pipe closed");
      sent += static_cast<size_t>(n);
    }
    return last_id_;
  }

  // The next message from the browser, waiting at most until `deadline`.
  nlohmann::json receive(std::chrono::steady_clock::time_point deadline) {
    for (;;) {
      const size_t end = buffer_.find('\0');
      if (end != std::string::npos) {
        nlohmann::json message = nlohmann::json::parse(buffer_.substr(0, end));
        buffer_.erase(0, end + 1);
        return message;
      }
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{from_browser_, POLLIN, 0};
      if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0)
        throw std::runtime_error("chromium: no answer over the DevTools pipe within 30 s");
      char chunk[65536];
      const ssize_t n = read(from_browser_, chunk, sizeof(chunk));
      if (n <= 0) throw std::runtime_error("chromium: the DevTools pipe closed");
      buffer_.append(chunk, static_cast<size_t>(n));
    }
  }

  // Sends a command and returns its result; events that arrive meanwhile are kept for wait_event and load.
  nlohmann::json call(const std::string& method, const nlohmann::json& params,
                      const std::string& session = "") {
    const int id = send(method, params, session);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kTimeoutMs);
    for (;;) {
      nlohmann::json message = receive(deadline);
      if (message.value("id", 0) != id) {
        if (message.contains("method")) events_.push_back(std::move(message));
        continue;
      }
      if (message.contains("error"))
        throw std::runtime_error("chromium: " + method + ": " + message["error"].dump());
      return message["result"];
    }
  }

  void wait_event(const std::string& method, const std::string& session) {
    for (const nlohmann::json& e : events_) {
      if (e.value("method", "") == method && e.value("sessionId", "") == session) return;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kTimeoutMs);
    for (;;) {
      nlohmann::json message = receive(deadline);
      const bool found = message.value("method", "") == method && message.value("sessionId", "") == session;
      if (message.contains("method")) events_.push_back(std::move(message));
      if (found) return;
    }
  }

  pid_t pid_ = -1;
  int to_browser_ = -1, from_browser_ = -1;
  int last_id_ = 0;
  std::string buffer_;
  std::deque<nlohmann::json> events_;
};

}  // namespace triad::testing
