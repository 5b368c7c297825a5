import streamlit as st; st.info("Explore: being written.")
