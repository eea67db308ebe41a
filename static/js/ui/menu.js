/* The user menu (a <details>) closes on Escape or on a click elsewhere.
   Every signed-in page loads this. */

function closeMenus(except) {
  document.querySelectorAll("details.user-menu[open]").forEach((menu) => {
    if (menu !== except) menu.open = false;
  });
}

document.addEventListener("click", (event) => {
  closeMenus(event.target.closest("details.user-menu"));
});

document.addEventListener("keydown", (event) => {
  if (event.key !== "Escape") return;
  const open = document.querySelector("details.user-menu[open]");
  if (!open) return;
  open.open = false;
  open.querySelector("summary").focus();
});
