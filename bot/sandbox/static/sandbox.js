// The sandbox page: polls /api/state every second and swaps the HTML fragments that changed
// (all of them escaped by the server); clicks and modal submits go to the sandbox, which
// sends them to the bot as signed Slack requests.
"use strict";

const POLL_MS = 1000;
const shown = new Map(); // fragment key -> HTML currently in the page
let pendingClick = null; // the button click waiting for its confirm dialog

function acting() {
  const checked = document.querySelector('input[name="acting"]:checked');
  return checked ? checked.value : "";
}

async function post(url, body) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  return response.json();
}

function swap(element, key, html) {
  if (shown.get(key) === html) return;
  shown.set(key, html);
  element.innerHTML = html;
}

function channelBox(channel) {
  let box = document.getElementById("ch-" + channel.id);
  if (!box) {
    box = document.createElement("div");
    box.className = "channel";
    box.id = "ch-" + channel.id;
    const title = document.createElement("h2");
    title.textContent = channel.name;
    box.appendChild(title);
    document.getElementById("slack").appendChild(box);
  }
  return box;
}

function renderChannels(channels) {
  document.getElementById("no-messages").hidden = channels.length > 0;
  for (const channel of channels) {
    const box = channelBox(channel);
    for (const message of channel.messages) {
      let slot = box.querySelector('[data-key="' + CSS.escape(message.key) + '"]');
      if (!slot) {
        slot = document.createElement("div");
        slot.className = "slot";
        slot.dataset.key = message.key;
        box.appendChild(slot);
      }
      swap(slot, message.key, message.html);
    }
  }
}

function renderModal(modals) {
  const dialog = document.getElementById("modal-dialog");
  const openId = dialog.open ? dialog.dataset.viewId : null;
  if (openId && !modals.some((m) => m.view_id === openId)) dialog.close();
  if (dialog.open || modals.length === 0) return;
  const modal = modals[0];
  dialog.dataset.viewId = modal.view_id;
  dialog.dataset.user = modal.user;
  dialog.querySelector(".modal-as").textContent = "Modal opened for " + modal.user_name;
  dialog.querySelector(".modal-body").innerHTML = modal.html;
  dialog.showModal();
}

async function poll() {
  try {
    const state = await (await fetch("/api/state")).json();
    renderChannels(state.channels);
    swap(document.getElementById("gitlab"), "gitlab", state.gitlab);
    swap(document.getElementById("ledger"), "ledger", state.ledger);
    const problems = document.getElementById("problems");
    problems.textContent = state.problems.join("\n");
    renderModal(state.modals);
  } catch (error) {
    document.getElementById("problems").textContent = "sandbox unreachable: " + error;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

async function sendClick(click) {
  const answer = await post("/api/click", { ...click, user: acting() });
  const line = document.getElementById("pipeline-answer");
  if (answer.status !== 200) line.textContent = "Slack request answered " + answer.status;
}

function onMessageClick(event) {
  const button = event.target.closest(".msg .bk-button[data-action-id]");
  if (!button) return;
  // The message the button is on: a thread reply has its own ts, as in Slack.
  const message = button.closest("[data-ts]");
  const click = {
    action_id: button.dataset.actionId,
    value: button.dataset.value,
    block_id: button.dataset.blockId,
    channel: message.dataset.channel,
    ts: message.dataset.ts,
  };
  const confirm = button.parentElement.querySelector("dialog.bk-confirm");
  if (!confirm) {
    sendClick(click);
    return;
  }
  // Slack shows the confirm dialog first; nothing is sent unless it is confirmed.
  pendingClick = click;
  const dialog = document.getElementById("confirm-dialog");
  dialog.innerHTML = confirm.innerHTML;
  dialog.showModal();
}

function onConfirm(event) {
  const choice = event.target.closest("[data-confirm]");
  if (!choice) return;
  const dialog = document.getElementById("confirm-dialog");
  dialog.close();
  if (choice.dataset.confirm === "yes" && pendingClick) sendClick(pendingClick);
  pendingClick = null;
}

async function onModalSubmit(event) {
  event.preventDefault();
  const dialog = document.getElementById("modal-dialog");
  const values = {};
  for (const input of dialog.querySelectorAll(".bk-input")) {
    values[input.dataset.blockId] = values[input.dataset.blockId] || {};
    values[input.dataset.blockId][input.dataset.actionId] = input.value;
  }
  const viewId = dialog.dataset.viewId;
  const answer = await post("/api/views/" + encodeURIComponent(viewId), {
    user: dialog.dataset.user,
    values: values,
  });
  const body = answer.body || {};
  if (body.response_action === "errors") {
    for (const [block, message] of Object.entries(body.errors || {})) {
      const slot = dialog.querySelector('[data-error-for="' + CSS.escape(block) + '"]');
      if (slot) slot.textContent = message;
    }
    return;
  }
  dialog.close();
}

async function closeModal() {
  const dialog = document.getElementById("modal-dialog");
  await post("/api/views/" + encodeURIComponent(dialog.dataset.viewId) + "/close", {});
  dialog.close();
}

function onModalClick(event) {
  if (event.target.closest("[data-close]")) closeModal();
}

async function onPipelineSubmit(event) {
  event.preventDefault();
  const fields = event.target.elements;
  const migration = fields.namedItem("migration");
  const answer = await post("/api/pipelines", {
    project: fields.namedItem("project").value,
    ref: fields.namedItem("ref").value,
    triggered_by: fields.namedItem("triggered_by").value,
    author: fields.namedItem("author").value,
    title: fields.namedItem("title").value,
    migration: migration ? migration.checked : false,
  });
  const status = answer.body && answer.body.status ? " " + answer.body.status : "";
  const line = answer.pipeline_id
    ? "Pipeline #" + answer.pipeline_id + ": webhook answered " + answer.status + status
    : "Refused: " + (answer.error || JSON.stringify(answer));
  document.getElementById("pipeline-answer").textContent = line;
}

async function onDeployClick(event) {
  const button = event.target.closest("button.deploy[data-pipeline]");
  if (!button) return;
  button.disabled = true;
  const answer = await post(
    "/api/pipelines/" + encodeURIComponent(button.dataset.pipeline) + "/deploy",
    { smoke: button.dataset.smoke },
  );
  const status = answer.body && answer.body.status ? " " + answer.body.status : "";
  document.getElementById("pipeline-answer").textContent =
    "Pipeline #" + button.dataset.pipeline + " deployed: webhook answered " + answer.status + status;
}

document.getElementById("slack").addEventListener("click", onMessageClick);
document.getElementById("gitlab").addEventListener("click", onDeployClick);
document.getElementById("confirm-dialog").addEventListener("click", onConfirm);
document.getElementById("modal-dialog").addEventListener("submit", onModalSubmit);
document.getElementById("modal-dialog").addEventListener("click", onModalClick);
document.getElementById("modal-dialog").addEventListener("cancel", closeModal); // Escape key
document.getElementById("pipeline-form").addEventListener("submit", onPipelineSubmit);
poll();
