// Small scripts only (no inline scripts: the console's CSP is script-src 'self'): a background export with a
// progress bar, the e-code countdown, selects that submit their form.  POSTs carry the page's CSRF token.
const csrfToken = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
document.addEventListener("DOMContentLoaded", () => {
  document.querySelectorAll("select.autosubmit").forEach(el => el.addEventListener("change", () => el.form.submit()));
  const btn = document.getElementById("export-job");
  if (btn) btn.addEventListener("click", async () => {
    const box = document.getElementById("job"), bar = document.getElementById("job-progress"), pct = document.getElementById("job-pct");
    box.classList.remove("hidden");
    const psn = btn.dataset.psn ? "?psn_no=" + encodeURIComponent(btn.dataset.psn) : "";
    let job = await (await fetch("/console/jobs/export-settlements" + psn, {method: "POST", headers: {"X-CSRF-Token": csrfToken()}})).json();
    while (job.status === "running") {
      bar.value = job.percent; pct.textContent = job.percent + "%";
      await new Promise(r => setTimeout(r, 300));
      job = await (await fetch("/console/jobs/" + job.id)).json();
    }
    bar.value = 100; pct.textContent = job.status === "done" ? "100%" : job.error;
    if (job.status === "done") { const a = document.getElementById("job-file"); a.href = "/console/jobs/" + job.id + "/file"; a.classList.remove("hidden"); a.setAttribute("download", job.filename); }
  });
  const cd = document.getElementById("countdown");
  if (cd) { let n = parseInt(cd.textContent, 10); const t = setInterval(() => { n -= 1; cd.textContent = Math.max(n, 0); if (n <= 0) clearInterval(t); }, 1000); }
});
