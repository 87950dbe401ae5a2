// The lobby: join with a name, see who is here (presence channel), send messages through
// POST /push -> queue -> worker -> Pusher, and watch the tasks that carried them.
"use strict";

const $ = (id) => document.getElementById(id);
// The task view polls /tasks/recent (pushing outcomes through Pusher would fail exactly
// during an outage): every second while the log changes or a bubble waits for its task,
// backing off to every 5 s while nothing changes.
const TASK_POLL_MS = 1000;
const TASK_POLL_IDLE_MS = 5000;
// Each tab keeps its own user (sessionStorage): two tabs of one browser are two people. The
// cookie /demo/name sets is only this browser's last name, offered to a new tab.
const TAB_USER_KEY = "demo-user";

// shown: every message on the page by id (a message Pusher delivers twice shows once);
// byTask: the sender's own bubbles by the task that carries them (each follows its task).
const state = { config: null, user: null, pusher: null, channel: null, shown: new Map(), byTask: new Map() };
const poll = { delay: TASK_POLL_MS, timer: null, lastAnswer: "" };
const FINAL_STATES = new Set(["delivered", "parked", "logged", "refused"]);

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function avatar(name) {
  let hash = 0;
  for (const char of name) hash = (hash * 31 + char.codePointAt(0)) % 360;
  const node = element("span", "avatar", name.slice(0, 1));
  node.style.background = `hsl(${hash}, 55%, 52%)`;
  return node;
}

function clock(date) {
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
}

function messageId() {
  return window.crypto && crypto.randomUUID ? crypto.randomUUID() : `${Date.now()}-${Math.random()}`;
}

// --- joining -------------------------------------------------------------------------

function tabUser() {
  try {
    return sessionStorage.getItem(TAB_USER_KEY);
  } catch {
    return null;  // storage disabled: the cookie's user, shared by the browser's tabs
  }
}

function rememberTabUser(user) {
  try {
    sessionStorage.setItem(TAB_USER_KEY, user);
  } catch {
    // storage disabled: requests carry the cookie only
  }
}

// The header that names this tab's user on /pusher/auth and /push (the cookie would name
// the browser's last user).
function userHeaders() {
  return state.user ? { [state.config.userHeader]: state.user } : {};
}

async function chooseName(event) {
  event.preventDefault();
  $("join-error").textContent = "";
  const response = await fetch("/demo/name", {
    method: "POST",
    body: new URLSearchParams({ name: $("name-input").value.trim() }),
  });
  const answer = await response.json();
  if (!response.ok) {
    $("join-error").textContent = answer.error || `refused (${response.status})`;
    return;
  }
  rememberTabUser(answer.user);
  enterLobby(answer.user);
}

function enterLobby(user) {
  state.user = user;
  $("whoami").textContent = user;
  $("whoami").hidden = $("rename").hidden = false;
  $("join-form").hidden = true;
  $("messages").hidden = $("send-form").hidden = false;
  $("message-input").focus();
  connect();
}

function leaveLobby() {
  if (state.pusher) state.pusher.disconnect();
  state.pusher = state.channel = null;
  renderMembers();
  $("whoami").hidden = $("rename").hidden = true;
  $("messages").hidden = $("send-form").hidden = true;
  $("join-form").hidden = false;
  $("name-input").value = state.user || "";
  $("name-input").focus();
}

// --- Pusher --------------------------------------------------------------------------

function connect() {
  const config = state.config;
  const options = {
    cluster: config.cluster || "mt1",
    forceTLS: config.forceTLS,
    enabledTransports: ["ws", "wss"],
    disableStats: true,
    channelAuthorization: { endpoint: config.authEndpoint, transport: "ajax", headers: userHeaders() },
  };
  if (config.wsHost) Object.assign(options, { wsHost: config.wsHost, wsPort: config.wsPort, wssPort: config.wssPort });
  state.pusher = new Pusher(config.key, options);
  state.pusher.connection.bind("state_change", ({ current }) => setConnection(current));

  const channel = (state.channel = state.pusher.subscribe(config.channel));
  channel.bind("pusher:subscription_succeeded", () => {
    renderMembers();
    notice(`You joined ${config.channel}`);
  });
  channel.bind("pusher:subscription_error", (error) => {
    notice(`Could not join ${config.channel}: ${error.status || error.type || "refused"}`);
  });
  channel.bind("pusher:member_added", (member) => {
    renderMembers();
    notice(`${member.id} joined`);
  });
  channel.bind("pusher:member_removed", (member) => {
    renderMembers();
    notice(`${member.id} left`);
  });
  channel.bind(config.event, receive);
}

function setConnection(current) {
  const pill = $("connection");
  pill.dataset.state = current;
  pill.textContent = current.replace("_", " ");
}

function renderMembers() {
  const list = $("members");
  list.replaceChildren();
  const members = state.channel && state.channel.members;
  if (!members || !members.count) {
    $("member-count").textContent = "0";
    return;
  }
  const people = [];
  members.each((member) => people.push(member.id));
  people.sort((a, b) => a.localeCompare(b));
  for (const id of people) {
    const item = element("li", id === members.me.id ? "me" : "");
    item.dataset.user = id;
    item.append(avatar(id), element("span", "member-name", id));
    list.append(item);
  }
  $("member-count").textContent = String(members.count);
}

// --- messages ------------------------------------------------------------------------

function notice(text) {
  appendMessage(element("li", "notice", text));
}

function appendMessage(node) {
  const list = $("messages");
  const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
  list.append(node);
  if (atBottom) list.scrollTop = list.scrollHeight;
}

// A message goes before the first later one (by sent_at): retried tasks arrive out of order.
function placeMessage(node, sentAt) {
  node.dataset.sentAt = sentAt || "";
  const later = sentAt && [...$("messages").querySelectorAll(".message")].find(
    (other) => other.dataset.sentAt && other.dataset.sentAt > sentAt,
  );
  if (later) later.before(node);
  else appendMessage(node);
}

function messageNode(message, mine) {
  const item = element("li", mine ? "message mine" : "message");
  item.dataset.id = message.id || "";
  const bubble = element("div", "bubble");
  const meta = element("div", "meta");
  // Anyone may publish to the lobby: its fields can be of any JSON type.
  const author = message.user == null || message.user === "" ? "" : String(message.user);
  const sent = new Date(typeof message.sent_at === "string" ? message.sent_at : NaN);
  const when = Number.isNaN(sent.getTime()) ? new Date() : sent;
  meta.append(element("span", "author", author || "someone"), element("span", "", clock(when)));
  bubble.append(meta, element("p", "text", String(message.text ?? "")));
  item.append(avatar(author || "?"), bubble);
  return item;
}

// A bubble's status: sending, queued, retried (n), delivered, parked or refused. A final
// state is kept (a late task-log entry does not take a delivered bubble back to "retried").
function setStatus(item, text, kind) {
  let status = item.querySelector(".status");
  if (!status) {
    status = element("div", "status");
    item.querySelector(".bubble").append(status);
  }
  if (FINAL_STATES.has(status.dataset.state) && kind !== status.dataset.state) return;
  status.className = `status ${kind || ""}`;
  status.dataset.state = kind || "";
  status.textContent = text;
}

async function send(event) {
  event.preventDefault();
  const input = $("message-input");
  const text = input.value.trim();
  if (!text) return;
  const message = { id: messageId(), user: state.user, text, sent_at: new Date().toISOString() };
  const item = messageNode(message, true);
  setStatus(item, "sending…", "sending");
  state.shown.set(message.id, item);
  placeMessage(item, message.sent_at);
  input.value = "";
  try {
    const response = await fetch(state.config.pushPath, {
      method: "POST",
      headers: { "Content-Type": "application/json", ...userHeaders() },
      body: JSON.stringify(message),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(answer.error || `HTTP ${response.status}`);
    item.dataset.task = answer.task;
    state.byTask.set(answer.task, item);
    setStatus(item, `queued as task ${shortName(answer.task)}`, "queued");
    pollSoon();
  } catch (error) {
    setStatus(item, `refused: ${error.message}`, "refused");
  }
}

function receive(message) {
  if (!message || typeof message !== "object") return;
  const known = message.id && state.shown.get(message.id);
  if (known) {  // a copy of a message on the page: at-least-once delivery, shown once
    if (known.classList.contains("mine")) setStatus(known, "delivered through Pusher ✓", "delivered");
    return;
  }
  const item = messageNode(message, false);
  if (message.id) state.shown.set(message.id, item);
  placeMessage(item, typeof message.sent_at === "string" ? message.sent_at : "");
}

// The sender's bubbles follow their tasks in the task log.
function followTasks(tasks) {
  for (const task of tasks) {
    const item = state.byTask.get(task.task);
    if (!item) continue;
    if (task.outcome === "retried") setStatus(item, `retried (${task.trail.filter((o) => o === "retried").length})`, "retried");
    else if (task.outcome === "parked") setStatus(item, "parked: Pusher did not take it (see the task view)", "parked");
    else if (task.outcome === "logged") setStatus(item, "could not be parked: in the error log", "logged");
    else if (task.outcome === "delivered") setStatus(item, "delivered through Pusher ✓", "delivered");
  }
}

// --- recent tasks --------------------------------------------------------------------
// /tasks/recent lists outcomes, newest first: {time, outcome, task, channel, event,
// retry_count, pusher_status}. A task appears once per outcome (queued, then retried,
// delivered or parked); the view shows one row per task with the path it took.

function shortName(name) {
  return String(name || "").split("/").pop().slice(-12) || "?";
}

function tasksByName(entries) {
  const tasks = new Map();
  for (const entry of entries) {
    const task = tasks.get(entry.task);
    if (task) task.trail.unshift(entry.outcome);
    else tasks.set(entry.task, { ...entry, trail: [entry.outcome] });
  }
  return [...tasks.values()];
}

function renderTasks(tasks) {
  const rows = tasks.map((task) => {
    const badge = element("span", "badge", task.outcome);
    badge.dataset.outcome = task.outcome;
    const status = task.pusher_status ? ` · Pusher ${task.pusher_status}` : "";
    const what = element("td", "event", task.event);
    what.append(element("small", "", `${task.channel} · ${shortName(task.task)}`));
    what.append(element("small", "", task.trail.join(" → ") + status));
    const outcome = element("td");
    outcome.append(badge);
    const attempts = task.outcome === "queued" ? "" : String(task.retry_count + 1);
    const row = element("tr");
    row.dataset.task = task.task;
    row.append(outcome, what, element("td", "", attempts), element("td", "", clock(new Date(task.time * 1000))));
    return row;
  });
  $("tasks").replaceChildren(...rows);
  return rows.length;
}

// A bubble of this tab still waits for its task's outcome.
function waitingForTasks() {
  return [...state.byTask.values()].some((item) => !FINAL_STATES.has(item.querySelector(".status").dataset.state));
}

function schedulePoll(changed) {
  poll.delay = changed || waitingForTasks() ? TASK_POLL_MS : Math.min(poll.delay * 2, TASK_POLL_IDLE_MS);
  $("tasks-status").dataset.pollMs = String(poll.delay);
  poll.timer = setTimeout(pollTasks, poll.delay);
}

// Poll now, unless a poll is under way (it schedules the next one itself).
function pollSoon() {
  if (poll.timer === null) return;
  clearTimeout(poll.timer);
  poll.timer = setTimeout(pollTasks, 0);
}

async function pollTasks() {
  poll.timer = null;
  const status = $("tasks-status");
  let changed = false;
  try {
    const response = await fetch(state.config.tasksPath, { cache: "no-store" });
    if (!response.ok) throw new Error(`${state.config.tasksPath} answered ${response.status}`);
    const answer = await response.text();
    changed = answer !== poll.lastAnswer;
    poll.lastAnswer = answer;
    const tasks = tasksByName(JSON.parse(answer).tasks);
    followTasks(tasks);
    const count = renderTasks(tasks);
    $("tasks-table").hidden = count === 0;
    status.hidden = count > 0;
    status.textContent = "No task yet: send a message.";
  } catch (error) {
    $("tasks-table").hidden = true;
    status.hidden = false;
    status.textContent = `Task view unavailable: ${error.message}`;
  }
  schedulePoll(changed);
}

// --- simulated outage ------------------------------------------------------------------
// `make dev` puts a fault proxy between the app and soketi; /demo/outage arms it.

function showOutage(mode) {
  $("outage").dataset.mode = mode;
  for (const button of document.querySelectorAll("#outage button")) {
    button.setAttribute("aria-pressed", String(button.dataset.mode === mode));
  }
}

async function outage(mode) {
  const init = mode ? { method: "POST", body: new URLSearchParams({ mode }) } : {};
  const response = await fetch("/demo/outage", init);
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) {
    $("outage-note").textContent = answer.error || `HTTP ${response.status}`;
    $("outage-buttons").hidden = mode === undefined;
    return;
  }
  $("outage-buttons").hidden = false;
  showOutage(answer.mode);
}

// --- start ---------------------------------------------------------------------------

async function start() {
  state.config = await (await fetch("/demo/config.json")).json();
  $("channel-name").textContent = state.config.channel;
  $("join-form").addEventListener("submit", chooseName);
  $("send-form").addEventListener("submit", send);
  $("rename").addEventListener("click", leaveLobby);
  for (const button of document.querySelectorAll("#outage button")) {
    button.addEventListener("click", () => outage(button.dataset.mode));
  }
  outage();
  const user = tabUser();
  if (user) enterLobby(user);  // this tab's user (a reload keeps it)
  else if (state.config.user) $("name-input").value = state.config.user;  // a new tab: offer the browser's last name
  pollTasks();
}

start();
