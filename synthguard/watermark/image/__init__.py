"""watermark/image"""
