// The book's small fixes to the theme's behaviour (added by book/_ext/book_html.py).
//
// The chapter-list (☰) and contents buttons. pydata-sphinx-theme binds its sidebar handlers to the *first*
// `.primary-toggle` and `.secondary-toggle` on the page, which under sphinx-book-theme are the buttons of a header
// bar that the book theme hides; the buttons a reader sees (in the article header) then do nothing, so on a phone
// the chapter list cannot be opened at all. A click on a visible button is passed on to the bound, hidden one,
// whose handlers open the list (a dialog on a phone) or hide and show it beside the text (a desktop). Nothing is
// passed on when the first button is itself visible: then the theme's own handlers are already in reach.
document.addEventListener("DOMContentLoaded", () => {
  for (const kind of ["primary-toggle", "secondary-toggle"]) {
    const [bound, ...others] = document.querySelectorAll(`button.${kind}`);
    if (!bound) continue;
    for (const button of others) {
      button.addEventListener("click", (event) => {
        if (bound.offsetParent !== null) return;  // the bound button is shown: the theme handles its own clicks
        event.preventDefault();
        event.stopPropagation();
        bound.click();
      });
    }
  }
});
