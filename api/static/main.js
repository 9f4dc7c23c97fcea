// The console: two views, no build step. `live.js` talks to the realtime pool, `jobs.js` to the jobs API.
import { LiveTalk } from "./live.js";
import { JobsView } from "./jobs.js";

const views = { live: document.getElementById("view-live"), jobs: document.getElementById("view-jobs") };
let jobs = null;

function show(name) {
  for (const [key, element] of Object.entries(views)) element.hidden = key !== name;
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.view === name);
  if (name === "jobs") jobs.refresh();
  history.replaceState(null, "", "#" + name);
}

const live = new LiveTalk(document);
jobs = new JobsView(document);
for (const tab of document.querySelectorAll(".tab")) tab.addEventListener("click", () => show(tab.dataset.view));
show(location.hash === "#jobs" ? "jobs" : "live");
window.voicechainConsole = { live, jobs };
