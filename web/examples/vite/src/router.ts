// A client-side router in a few lines: links marked data-link change the
// URL with the History API, and the view follows the path, on load, on a
// click and on the back button. A page reload or a deep link asks the
// server for that path: the Vite dev server, or the BFF with
// TETHER_WEB_FALLBACK=index.html, answers with index.html.

export type View = (root: HTMLElement) => void;

export function startRouter(routes: Record<string, View>, notFound: View, root: HTMLElement): () => void {
  const render = (): void => {
    root.replaceChildren();
    (routes[location.pathname] ?? notFound)(root);
    document.body.dataset.route = location.pathname;
  };
  document.addEventListener("click", (e) => {
    const a = e.target instanceof Element ? e.target.closest<HTMLAnchorElement>("a[data-link]") : null;
    if (!a || a.origin !== location.origin || e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    if (a.pathname !== location.pathname) history.pushState(null, "", a.pathname + a.search);
    render();
  });
  addEventListener("popstate", render);
  render();
  return render;
}
