"""What people use: the command line, the Run button's use case, the pages' logic without Streamlit (`ui_support`) and the web server's access control (login, sessions, upload budgets)."""
