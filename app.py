"""Streamlit entry point (being built out by the app issue): predictions on the bundled model."""
import streamlit as st

from models import DEFAULT_MODEL, ImageError, load_model, read_image

st.set_page_config(page_title="CNN attribution explorer", layout="wide")
st.title("CNN attribution explorer")


@st.cache_resource
def get_model(name: str):
    return load_model(name)


upload = st.file_uploader("Image", type=["jpg", "jpeg", "png", "webp", "bmp", "gif", "tif", "tiff"])
data = upload.getvalue() if upload else open("assets/samples/cat.jpg", "rb").read()
try:
    image = read_image(data)
except ImageError as err:
    st.error(str(err))
    st.stop()
bundle = get_model(DEFAULT_MODEL)
st.image(image, width=320)
for _, name, prob in bundle.predict(bundle.preprocess(image)):
    st.write(f"{name}: {prob:.1%}")
