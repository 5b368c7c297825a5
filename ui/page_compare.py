import streamlit as st; st.info("Compare classes: being written.")
