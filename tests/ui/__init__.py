"""Page objects for the three web UIs (Argo, MLflow, review), driven by Playwright in headless chromium."""
