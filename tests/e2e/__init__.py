"""Real-browser end-to-end tests: the Streamlit app driven by Playwright and Debian's Chromium."""
